/** The Saga's status mirrored from the engine's run. Pure. */
import {
  canonicalJson,
  type RunView,
  type SagaPhase,
  type SagaStatus,
  type SagaStepStatus,
  type StepState,
} from '@sagamesh/contracts';
import { sagaConditions } from './conditions.ts';

/** The step times the status shows once they happened. */
const STEP_TIMES = ['startedAt', 'endedAt', 'compensatedAt'] as const;

function stepStatus(s: StepState): SagaStepStatus {
  const out: SagaStepStatus = { name: s.name, status: s.status, attempts: s.attempts, compensationAttempts: s.compensationAttempts };
  for (const t of STEP_TIMES) if (s[t]) out[t] = s[t];
  if (s.error) out.error = { code: s.error.code, message: s.error.message };
  return out;
}

function runMessage(run: RunView): string {
  const because = run.error ? `, because ${run.error.code === 'cancelled' ? 'the run was cancelled' : run.error.message}` : '';
  switch (run.phase) {
    case 'Pending':
      return 'waiting for the engine to start the run';
    case 'Running':
      return `running step ${run.currentStep ?? '(none)'}`;
    case 'Compensating':
      return `compensating step ${run.currentStep ?? '(none)'}${because}`;
    case 'Succeeded':
      return `all ${run.steps.length} steps succeeded`;
    case 'Compensated':
      return `compensated${because}`;
    case 'Failed':
      return `a compensation gave up, a person must look${run.error ? `: ${run.error.message}` : ''}`;
  }
}

/** The status that mirrors a run. */
export function sagaStatusFromRun(prev: SagaStatus | undefined, run: RunView, generation: number, now: string): SagaStatus {
  const message = runMessage(run);
  return {
    phase: run.phase,
    ...(run.currentStep !== undefined ? { currentStep: run.currentStep } : {}),
    steps: run.steps.map(stepStatus),
    conditions: sagaConditions(prev?.conditions, run.phase, message, generation, now),
    observedGeneration: generation,
    runId: run.runId,
    definitionRevision: run.revision,
    ...(run.traceId ? { traceId: run.traceId } : {}),
    startedAt: run.startedAt,
    ...(run.endedAt ? { endedAt: run.endedAt } : {}),
    message,
  };
}

/** A status for a Saga that has no run (yet, or ever). */
export function sagaStatusWithoutRun(prev: SagaStatus | undefined, phase: SagaPhase, message: string, generation: number, now: string): SagaStatus {
  const { currentStep: _c, ...rest } = prev ?? {};
  return { ...rest, phase, conditions: sagaConditions(prev?.conditions, phase, message, generation, now), observedGeneration: generation, message };
}

export function sameStatus(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? {}) === canonicalJson(b ?? {});
}
