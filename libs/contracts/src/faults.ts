import { Type, type Static } from '@sinclair/typebox';

/** `<service>.<command>`, e.g. `payments.charge`. */
export const FAULT_TARGET_PATTERN = '^[a-z][a-z0-9-]*\\.[a-z][a-z0-9-]*$';

/** One fault: the `/admin/faults` item shape; per-run faults use the same shape. */
export const Fault = Type.Object(
  {
    target: Type.String({ pattern: FAULT_TARGET_PATTERN, description: '<service>.<command>, e.g. payments.charge' }),
    failureRate: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'Probability that the command fails; 1 fails always (deterministic).' }),
    latencyMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 0, description: 'Added latency before the command is handled.' }),
    crashAfterCommit: Type.Boolean({ default: false, description: 'The process exits after its state change, before replying.' }),
  },
  { additionalProperties: false },
);
export type Fault = Static<typeof Fault>;
export const FaultList = Type.Array(Fault, { maxItems: 64 });

/**
 * The fault that applies to one command: a per-run fault for the target wins over the global one.
 * Pure: the caller brings both lists.
 */
export function effectiveFault(target: string, perRun: readonly Fault[] | undefined, global: readonly Fault[]): Fault | undefined {
  return perRun?.find((f) => f.target === target) ?? global.find((f) => f.target === target);
}

/** Whether an injected failure fires, given a uniform random number in [0, 1). Rate 1 always fires, 0 never. */
export function faultFires(fault: Fault | undefined, random: number): boolean {
  if (!fault || fault.failureRate <= 0) return false;
  return fault.failureRate >= 1 || random < fault.failureRate;
}
