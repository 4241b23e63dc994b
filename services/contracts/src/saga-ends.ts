import type { RunOrigin } from './messaging.ts';
import type { SagaEventName } from './saga.ts';

/**
 * A run's end (succeeded, compensated, failed) is published twice by the engine: on
 * `saga.events.<origin>.<runId>` with the other progress events, and on `saga.ended.<origin>.<runId>`
 * (stream SAGA_EVENTS too), the same message under de-dup id `<event msg id>.ended`. Readers that
 * act only on ends (orders, inventory) consume the second subject, and so do not receive (and ack)
 * the several progress events of every run.
 */
export const SagaEndSubjects = {
  ended: (origin: RunOrigin, runId: string) => `saga.ended.${origin}.${runId}`,
  endedOf: (origin: RunOrigin) => `saga.ended.${origin}.>`,
  allEnded: 'saga.ended.>',
} as const;

/** The saga events that end a run. */
export const SagaEndEventNames = ['succeeded', 'compensated', 'failed'] as const satisfies readonly SagaEventName[];
export type SagaEndEventName = (typeof SagaEndEventNames)[number];
export const isSagaEndEvent = (name: string): name is SagaEndEventName => (SagaEndEventNames as readonly string[]).includes(name);
