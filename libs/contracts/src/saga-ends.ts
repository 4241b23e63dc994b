import type { SagaEventName } from './saga.ts';

/** The saga events that end a run. */
export const SagaEndEventNames = ['succeeded', 'compensated', 'failed'] as const satisfies readonly SagaEventName[];
export type SagaEndEventName = (typeof SagaEndEventNames)[number];
export const isSagaEndEvent = (name: string): name is SagaEndEventName => (SagaEndEventNames as readonly string[]).includes(name);
