/** The Kubernetes Events a status change reveals: one per phase or step transition, in order. Pure. */
import {
  type SagaPhase,
  type SagaStatus,
  type SagaStepStatus,
  type StepStatus,
} from '@sagamesh/contracts';

/** A Kubernetes Event to record about the object; `key` identifies the transition (same key = same event). */
export interface EventSpec {
  key: string;
  type: 'Normal' | 'Warning';
  reason: string;
  note: string;
}


/** The transitions a run passes through to reach a phase (so a skipped observation still gets its events). */
const phasePath: Record<SagaPhase, SagaPhase[]> = {
  Pending: [],
  Running: ['Running'],
  Succeeded: ['Running', 'Succeeded'],
  Compensating: ['Running', 'Compensating'],
  Compensated: ['Running', 'Compensating', 'Compensated'],
  Failed: ['Running', 'Compensating', 'Failed'],
};
const stepPath: Record<StepStatus, StepStatus[]> = {
  Pending: [],
  Running: ['Running'],
  Succeeded: ['Running', 'Succeeded'],
  Failed: ['Running', 'Failed'],
  TimedOut: ['Running', 'TimedOut'],
  Compensating: ['Running', 'Compensating'],
  Compensated: ['Running', 'Compensating', 'Compensated'],
  CompensationFailed: ['Running', 'Compensating', 'CompensationFailed'],
  Skipped: ['Skipped'],
};
const phaseReason: Record<SagaPhase, string> = {
  Pending: 'Pending',
  Running: 'Started',
  Compensating: 'Compensating',
  Succeeded: 'Succeeded',
  Compensated: 'Compensated',
  Failed: 'Failed',
};
const warningPhases: readonly SagaPhase[] = ['Compensating', 'Compensated', 'Failed'];
const warningSteps: readonly StepStatus[] = ['Failed', 'TimedOut', 'CompensationFailed'];
const stepVerb: Record<StepStatus, string> = {
  Pending: 'is pending',
  Running: 'started',
  Succeeded: 'succeeded',
  Failed: 'failed',
  TimedOut: 'timed out',
  Compensating: 'is being compensated',
  Compensated: 'was compensated',
  CompensationFailed: 'could not be compensated',
  Skipped: 'was skipped',
};

function stepEvent(step: SagaStepStatus, status: StepStatus): EventSpec {
  const compensation = status.startsWith('Compensat');
  const attempt = compensation ? step.compensationAttempts : step.attempts;
  const error = step.error && (status === 'Failed' || status === 'TimedOut' || status === 'CompensationFailed') ? `: ${step.error.code}: ${step.error.message}` : '';
  return {
    // Same transition, same key, whenever it is observed: so an Event is recorded once.
    key: `step.${step.name}.${status}.${compensation ? 'c' : ''}${attempt}`,
    type: warningSteps.includes(status) ? 'Warning' : 'Normal',
    reason: `Step${status}`,
    note: `step ${step.name} ${stepVerb[status]}${status === 'Skipped' ? '' : ` (attempt ${attempt})`}${error}`,
  };
}

/** The Events for what changed between two statuses of the same run, in the order it happened. */
export function transitionEvents(prev: SagaStatus | undefined, next: SagaStatus): EventSpec[] {
  const before = new Set(prev?.phase ? phasePath[prev.phase] : []);
  const newPhases = next.phase ? phasePath[next.phase].filter((p) => !before.has(p)) : [];
  const phaseEvent = (p: SagaPhase): EventSpec => ({
    key: `phase.${p}`,
    type: warningPhases.includes(p) ? 'Warning' : 'Normal',
    reason: phaseReason[p],
    note:
      p === 'Running'
        ? `run ${next.runId} started (definition revision ${next.definitionRevision})`
        : p === next.phase && next.message
          ? next.message
          : `the saga is ${p.toLowerCase()}`,
  });
  // Steps run forward and are compensated backward: one observation may reveal both.
  const forward: EventSpec[] = [];
  const backward: EventSpec[][] = [];
  for (const step of next.steps ?? []) {
    const old = prev?.steps?.find((s) => s.name === step.name);
    const seen = new Set(old ? stepPath[old.status] : []);
    const undo: EventSpec[] = [];
    if (old && step.attempts > old.attempts && step.attempts > 1) {
      forward.push({ key: `step.${step.name}.Retried.${step.attempts}`, type: 'Normal', reason: 'StepRetried', note: `step ${step.name} retried (attempt ${step.attempts})` });
    }
    if (old && step.compensationAttempts > old.compensationAttempts && step.compensationAttempts > 1) {
      undo.push({
        key: `step.${step.name}.CompensationRetried.${step.compensationAttempts}`,
        type: 'Normal',
        reason: 'StepCompensationRetried',
        note: `compensation of step ${step.name} retried (attempt ${step.compensationAttempts})`,
      });
    }
    // A new attempt walks the path again (a retry can time out a second time); its start is StepRetried.
    const retried = old !== undefined && old.attempts > 0 && step.attempts > old.attempts;
    for (const s of stepPath[step.status]) {
      if (retried ? s === 'Running' : seen.has(s)) continue;
      (s.startsWith('Compensat') ? undo : forward).push(stepEvent(step, s));
    }
    backward.unshift(undo);
  }
  const at = (p: SagaPhase) => (newPhases.includes(p) ? [phaseEvent(p)] : []);
  return [
    ...at('Running'),
    ...forward,
    ...at('Compensating'),
    ...backward.flat(),
    ...newPhases.filter((p) => p !== 'Running' && p !== 'Compensating').map(phaseEvent),
  ];
}
