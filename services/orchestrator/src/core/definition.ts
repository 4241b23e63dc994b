import { parseDuration, SagaDefaults, type RetryPolicy, type SagaDefinitionSpec, type StepTarget } from '@sagamesh/contracts';

/** A retry policy with its durations parsed and its defaults applied. */
export interface ResolvedPolicy {
  attempts: number;
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export interface ResolvedStep {
  name: string;
  action: StepTarget;
  compensation?: StepTarget;
  timeoutMs: number;
  retry: ResolvedPolicy;
}

/** A definition as the transition function reads it: pinned (key + revision), defaults applied, durations in ms. */
export interface ResolvedDefinition {
  key: string;
  revision: string;
  steps: ResolvedStep[];
  deadlineMs: number;
  compensationRetry: ResolvedPolicy;
}

type Policy = { attempts?: number; backoff?: Partial<NonNullable<RetryPolicy['backoff']>> };

function resolvePolicy(policy: Policy | undefined, dflt: typeof SagaDefaults.retry | typeof SagaDefaults.compensationRetry): ResolvedPolicy {
  return {
    attempts: policy?.attempts ?? dflt.attempts,
    initialMs: parseDuration(policy?.backoff?.initial ?? dflt.backoff.initial),
    maxMs: parseDuration(policy?.backoff?.max ?? dflt.backoff.max),
    multiplier: policy?.backoff?.multiplier ?? dflt.backoff.multiplier,
  };
}

/** Applies SagaDefaults to a (schema-valid) spec. The revision comes from the caller: hashing is not this module's job. */
export function resolveDefinition(key: string, revision: string, spec: SagaDefinitionSpec): ResolvedDefinition {
  return {
    key,
    revision,
    steps: spec.steps.map((s) => ({
      name: s.name,
      action: s.action,
      ...(s.compensation ? { compensation: s.compensation } : {}),
      timeoutMs: parseDuration(s.timeout ?? SagaDefaults.stepTimeout),
      retry: resolvePolicy(s.retry, SagaDefaults.retry),
    })),
    deadlineMs: parseDuration(spec.deadline ?? SagaDefaults.deadline),
    compensationRetry: resolvePolicy(spec.compensationRetry, SagaDefaults.compensationRetry),
  };
}

/** Delay before the attempt that follows `failedAttempt` (1-based): initial × multiplier^(n−1), capped at max. */
export function backoffDelayMs(policy: ResolvedPolicy, failedAttempt: number): number {
  const raw = policy.initialMs * policy.multiplier ** Math.max(0, failedAttempt - 1);
  return Math.min(policy.maxMs, Math.round(raw));
}
