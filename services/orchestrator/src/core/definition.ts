import { parseDuration, SagaDefaults, type Backoff, type CompensationRetryPolicy, type RetryPolicy, type SagaDefinitionSpec, type StepTarget } from '@sagamesh/contracts';

/** A backoff with its durations parsed and its defaults applied. */
export interface ResolvedBackoff {
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

/** A step's retry policy, resolved. */
export interface ResolvedPolicy extends ResolvedBackoff {
  attempts: number;
}

/** The compensation policy, resolved: `attempts` is Infinity when only the horizon bounds it. */
export interface ResolvedCompensationPolicy extends ResolvedBackoff {
  attempts: number;
  giveUpAfterMs: number;
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
  compensationRetry: ResolvedCompensationPolicy;
}

function resolveBackoff(backoff: Partial<Backoff> | undefined, dflt: Backoff): ResolvedBackoff {
  return {
    initialMs: parseDuration(backoff?.initial ?? dflt.initial),
    maxMs: parseDuration(backoff?.max ?? dflt.max),
    multiplier: backoff?.multiplier ?? dflt.multiplier,
  };
}

function resolvePolicy(policy: RetryPolicy | undefined): ResolvedPolicy {
  return { attempts: policy?.attempts ?? SagaDefaults.retry.attempts, ...resolveBackoff(policy?.backoff, SagaDefaults.retry.backoff) };
}

function resolveCompensationPolicy(policy: CompensationRetryPolicy | undefined): ResolvedCompensationPolicy {
  const dflt = SagaDefaults.compensationRetry;
  return {
    attempts: policy?.attempts ?? Number.POSITIVE_INFINITY,
    giveUpAfterMs: parseDuration(policy?.giveUpAfter ?? dflt.giveUpAfter),
    ...resolveBackoff(policy?.backoff, dflt.backoff),
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
      retry: resolvePolicy(s.retry),
    })),
    deadlineMs: parseDuration(spec.deadline ?? SagaDefaults.deadline),
    compensationRetry: resolveCompensationPolicy(spec.compensationRetry),
  };
}
