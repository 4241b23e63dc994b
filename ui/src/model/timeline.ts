// One run as a timeline: the actions in step order, then the compensations in the order they ran (the reverse of the
// actions), after the failure that caused them. Pure: the page draws it, the unit tests check it.
import type { RunEventRecord, RunView, StepState } from '@sagamesh/contracts';

/** One attempt that did not succeed, with what the engine said about it. */
export interface AttemptFailure {
  at: string;
  message: string;
}

export interface TimelineEntry {
  kind: 'action' | 'compensation';
  step: string;
  /** What the row shows as its status, a word (the page adds an icon). */
  outcome: 'pending' | 'running' | 'succeeded' | 'failed' | 'timed out' | 'skipped' | 'compensating' | 'compensated' | 'compensation failed';
  attempts: number;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  /** The last error of this action or compensation, when it had one. */
  error?: string;
  /** Every failed attempt the gateway saw (the progress events' messages), oldest first. */
  failures: AttemptFailure[];
}

export interface Timeline {
  entries: TimelineEntry[];
  /** Why the run compensated, shown between the actions and the compensations. */
  compensationCause?: string;
}

const span = (from?: string, to?: string) => (from && to ? Math.max(0, Date.parse(to) - Date.parse(from)) : undefined);

function actionOutcome(s: StepState, events: readonly RunEventRecord[]): TimelineEntry['outcome'] {
  switch (s.status) {
    case 'Pending': return 'pending';
    case 'Running': return 'running';
    case 'Succeeded': return 'succeeded';
    case 'Failed': return 'failed';
    case 'TimedOut': return 'timed out';
    case 'Skipped': return 'skipped';
    default: {
      // Compensating, Compensated, CompensationFailed: the action itself succeeded, or timed out (outcome unknown).
      const last = events.findLast((e) => e.step === s.name && (e.event === 'step_succeeded' || e.event === 'step_failed'));
      if (last) return last.event === 'step_succeeded' ? 'succeeded' : 'timed out';
      return s.error?.code === 'timeout' || s.error?.code === 'outcome_unknown' ? 'timed out' : 'succeeded';
    }
  }
}

function compensationOutcome(s: StepState): TimelineEntry['outcome'] {
  if (s.status === 'Compensated') return 'compensated';
  if (s.status === 'CompensationFailed') return 'compensation failed';
  return 'compensating';
}

const isCompensationMessage = (m: string) => m.startsWith('compensation ');

export function buildTimeline(run: RunView, events: readonly RunEventRecord[]): Timeline {
  const failuresOf = (step: string, compensation: boolean): AttemptFailure[] =>
    events
      .filter((e) => e.step === step && (e.event === 'step_failed' || e.event === 'step_retried' || e.event === 'compensation_failed') && e.message !== undefined)
      .filter((e) => (e.event === 'compensation_failed' || isCompensationMessage(e.message!)) === compensation)
      .map((e) => ({ at: e.at, message: e.message! }));

  const entries: TimelineEntry[] = run.steps.map((s) => {
    const outcome = actionOutcome(s, events);
    const e: TimelineEntry = { kind: 'action', step: s.name, outcome, attempts: s.attempts, failures: failuresOf(s.name, false) };
    if (s.startedAt) e.startedAt = s.startedAt;
    if (s.endedAt) e.endedAt = s.endedAt;
    const d = span(s.startedAt, s.endedAt);
    if (d !== undefined) e.durationMs = d;
    if (s.error && (outcome === 'failed' || outcome === 'timed out' || outcome === 'running')) e.error = s.error.message;
    return e;
  });

  const compensated = run.steps
    .filter((s) => s.compensationStartedAt !== undefined)
    .sort((a, b) => Date.parse(a.compensationStartedAt!) - Date.parse(b.compensationStartedAt!) || run.steps.indexOf(b) - run.steps.indexOf(a));
  for (const s of compensated) {
    const outcome = compensationOutcome(s);
    const e: TimelineEntry = { kind: 'compensation', step: s.name, outcome, attempts: s.compensationAttempts, startedAt: s.compensationStartedAt!, failures: failuresOf(s.name, true) };
    if (s.compensatedAt) e.endedAt = s.compensatedAt;
    const d = span(s.compensationStartedAt, s.compensatedAt);
    if (d !== undefined) e.durationMs = d;
    if (outcome === 'compensation failed' && s.error) e.error = s.error.message;
    entries.push(e);
  }
  const t: Timeline = { entries };
  if (run.error && (run.phase === 'Compensating' || run.phase === 'Compensated' || run.phase === 'Failed')) t.compensationCause = run.error.message;
  return t;
}
