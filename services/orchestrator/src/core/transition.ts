import { backoffDelayMs, commandMsgId, isTerminalPhase, Subjects, type SagaEventName, type StepError, type StepReply } from '@sagamesh/contracts';
import type { ResolvedDefinition, ResolvedStep } from './definition.ts';
import type { Effect, EngineInput, RunState, SagaOutcome, StartInput, StepAction, StepOutcome, TimerPayload, TransitionResult } from './types.ts';
import { toRunView } from './view.ts';

/**
 * The saga engine's decision: (run, pinned definition, input, now) → (new run, effects).
 * Pure — no I/O, no clock, no randomness. An input that does not match what the run waits for
 * (duplicate, a stale attempt's failure or timer, wrong step or action, a run already terminal) returns the
 * run unchanged with no effects. A stale attempt's success is taken (see takesReply).
 */
export function transition(run: RunState | undefined, def: ResolvedDefinition, input: EngineInput, now: number): TransitionResult {
  if (input.type === 'start') return run ? unchanged(run) : startRun(def, input, now);
  if (!run) throw new Error(`transition: "${input.type}" input for a run that does not exist`);
  if (isTerminalPhase(run.phase)) return unchanged(run);
  const change = new Change(copyForChange(run), def, now);
  const applied =
    input.type === 'reply' ? onReply(change, input.reply)
    : input.type === 'timer' ? onTimer(change, input.timer)
    : onCancel(change, input.reason);
  return applied ? change.result() : unchanged(run);
}

/**
 * Whether firing `t` now would change the run: the timer matches what the run waits for. A timer
 * that is not live never becomes live again (the run only moves forward).
 */
export function timerIsLive(run: RunState, t: TimerPayload): boolean {
  if (t.runId !== run.runId || isTerminalPhase(run.phase)) return false;
  switch (t.kind) {
    case 'deadline':
      return run.phase === 'Running';
    case 'step-timeout':
      return isCurrent(run, t.step, t.action, t.attempt, 'reply');
    case 'retry':
      return t.action === 'do' && isCurrent(run, t.step, 'do', (t.attempt ?? 0) - 1, 'retry');
    case 'compensation-retry':
      return t.action === 'compensate' && isCurrent(run, t.step, 'compensate', (t.attempt ?? 0) - 1, 'retry');
  }
}

/**
 * The copy a transition may change: the run and its step states (the only objects it mutates; it
 * replaces, never edits, errors, outputs and timers). Cheaper than a deep clone, on every input.
 */
function copyForChange(run: RunState): RunState {
  return { ...run, steps: run.steps.map((s) => ({ ...s })), timers: [...run.timers] };
}

/** A timer's de-dup id: one logical timer is scheduled at most once per run. */
export function timerId(t: TimerPayload): string {
  return t.kind === 'deadline' ? `${t.runId}.timer.deadline` : `${t.runId}.timer.${t.kind}.${t.step}.${t.action}.${t.attempt}`;
}

const unchanged = (run: RunState): TransitionResult => ({ run, effects: [] });
const iso = (ms: number) => new Date(ms).toISOString();

function startRun(def: ResolvedDefinition, input: StartInput, now: number): TransitionResult {
  const run: RunState = {
    runId: input.runId,
    definitionKey: def.key,
    revision: def.revision,
    origin: input.origin,
    input: input.input,
    ...(input.faults ? { faults: input.faults } : {}),
    ...(input.traceparent ? { traceparent: input.traceparent } : {}),
    phase: 'Running',
    steps: def.steps.map((s) => ({ name: s.name, status: 'Pending', attempts: 0, compensationAttempts: 0 })),
    cursor: 0,
    awaiting: 'reply',
    startedAt: iso(now),
    startedAtMs: now,
    deadlineAt: now + def.deadlineMs,
    updatedAtMs: now,
    version: 0,
    timers: [],
  };
  const c = new Change(run, def, now);
  c.event('started');
  c.timer({ kind: 'deadline', at: run.deadlineAt });
  c.commandStep(0);
  return c.result();
}

/** Whether the run waits for exactly this (step, action, attempt) in the given way. */
function isCurrent(run: RunState, step: string | undefined, action: StepAction | undefined, attempt: number | undefined, awaiting: 'reply' | 'retry'): boolean {
  return isOn(run, step, action, [awaiting], (current) => current === attempt);
}

/** Whether the run is on this (step, action), waiting in one of the given ways, at an attempt `at` accepts. */
function isOn(run: RunState, step: string | undefined, action: StepAction | undefined, awaiting: readonly RunState['awaiting'][], at: (current: number) => boolean): boolean {
  const s = run.steps[run.cursor];
  if (!s || s.name !== step || !awaiting.includes(run.awaiting)) return false;
  if (action === 'do') return run.phase === 'Running' && at(s.attempts);
  if (action === 'compensate') return run.phase === 'Compensating' && at(s.compensationAttempts);
  return false;
}

/**
 * Whether the run takes this reply: the one it waits for (this attempt), or a success of an earlier attempt of the
 * (step, action) it is still on, waiting for a reply or a retry. Participants are idempotent by step key, not by
 * attempt, so any attempt's success is the step's outcome; ignoring a late one would make a backlog longer than the
 * step timeout retry for ever, each reply arriving after the next attempt began (a livelock seen under load).
 */
function takesReply(run: RunState, reply: StepReply): boolean {
  if (isCurrent(run, reply.step, reply.action, reply.attempt, 'reply')) return true;
  // The command out is the one resent since a timeout: its reply, a failure too, is the current attempt's.
  const resent = run.steps[run.cursor]?.compensationResendOf;
  if (reply.action === 'compensate' && resent === reply.attempt && isOn(run, reply.step, 'compensate', ['reply'], () => true)) return true;
  return reply.outcome === 'succeeded' && reply.attempt >= 1 && isOn(run, reply.step, reply.action, ['reply', 'retry'], (current) => reply.attempt <= current);
}

function onReply(c: Change, reply: StepReply): boolean {
  const run = c.run;
  if (reply.runId !== run.runId || !takesReply(run, reply)) return false;
  const error = reply.error ?? { code: 'failed', message: 'the participant reported a failure' };
  if (reply.action === 'do') {
    if (reply.outcome === 'succeeded') c.stepSucceeded(reply.output);
    else c.stepFailed(error);
  } else if (reply.outcome === 'succeeded') c.stepCompensated();
  else c.compensationFailed(error);
  return true;
}

function onTimer(c: Change, t: TimerPayload): boolean {
  const run = c.run;
  if (!timerIsLive(run, t)) return false;
  switch (t.kind) {
    case 'deadline':
      c.beginCompensation({ code: 'deadline_exceeded', message: `the run's deadline of ${c.def.deadlineMs}ms passed` });
      return true;
    case 'step-timeout':
      if (t.action === 'do') c.stepTimedOut();
      else c.compensationFailed({ code: 'timeout', message: `compensation attempt ${t.attempt} timed out after ${c.step().timeoutMs}ms` }, true);
      return true;
    case 'retry':
      c.commandStep(run.cursor);
      return true;
    case 'compensation-retry':
      c.commandCompensation(run.cursor);
      return true;
  }
}

function onCancel(c: Change, reason: string | undefined): boolean {
  if (c.run.phase !== 'Running') return false;
  c.beginCompensation({ code: 'cancelled', message: reason ? `cancelled: ${reason}` : 'cancelled' });
  return true;
}

/** One transition in the making: mutates its own copy of the run and collects effects. */
class Change {
  readonly run: RunState;
  readonly def: ResolvedDefinition;
  readonly now: number;
  readonly effects: Effect[] = [];
  readonly events: { event: SagaEventName; step?: string; message?: string }[] = [];

  constructor(run: RunState, def: ResolvedDefinition, now: number) {
    this.run = run;
    this.def = def;
    this.now = now;
  }

  /** Events go last and all carry the final view: a consumer keeps the newest version. */
  result(): TransitionResult {
    this.run.version += 1;
    this.run.updatedAtMs = this.now;
    const run = this.run;
    run.timers = run.timers.filter((t) => timerIsLive(run, t));
    const view = toRunView(this.run);
    for (const e of this.events) this.effects.push({ type: 'event', ...e, run: view });
    return { run: this.run, effects: this.effects };
  }

  step(i = this.run.cursor): ResolvedStep {
    return this.def.steps[i]!;
  }

  private state(i = this.run.cursor) {
    return this.run.steps[i]!;
  }

  event(event: SagaEventName, step?: string, message?: string): void {
    this.events.push({ event, ...(step !== undefined ? { step } : {}), ...(message !== undefined ? { message } : {}) });
  }

  timer(t: Omit<TimerPayload, 'runId'>): void {
    const timer: TimerPayload = { runId: this.run.runId, ...t };
    this.effects.push({ type: 'timer', id: timerId(timer), at: timer.at, timer });
    this.run.timers.push(timer);
  }

  /** `resendOf`: the attempt whose command this one repeats, under that attempt's de-dup id (the server keeps one). */
  private command(step: ResolvedStep, action: StepAction, attempt: number, resendOf = attempt): void {
    const target = action === 'do' ? step.action : step.compensation!;
    const run = this.run;
    this.effects.push({
      type: 'command',
      subject: Subjects.command(target.service, target.command),
      msgId: commandMsgId(run.runId, step.name, action, resendOf),
      command: {
        runId: run.runId,
        definitionKey: run.definitionKey,
        step: step.name,
        action,
        attempt,
        origin: run.origin,
        input: run.input,
        ...(run.faults ? { faults: run.faults } : {}),
      },
    });
  }

  private stepEnded(outcome: StepOutcome): void {
    const st = this.state();
    const startedMs = st.startedAt ? Date.parse(st.startedAt) : this.now;
    this.effects.push({ type: 'step-ended', step: st.name, outcome, durationSeconds: (this.now - startedMs) / 1000 });
  }

  commandStep(i: number): void {
    const st = this.state(i);
    const step = this.step(i);
    st.attempts += 1;
    st.status = 'Running';
    st.startedAt ??= iso(this.now);
    this.run.cursor = i;
    this.run.awaiting = 'reply';
    this.command(step, 'do', st.attempts);
    this.timer({ kind: 'step-timeout', step: step.name, action: 'do', attempt: st.attempts, at: this.now + step.timeoutMs });
    this.event('step_started', step.name, st.attempts > 1 ? `attempt ${st.attempts} of ${step.retry.attempts}` : undefined);
  }

  stepSucceeded(output: unknown): void {
    const st = this.state();
    st.status = 'Succeeded';
    st.endedAt = iso(this.now);
    delete st.error;
    if (output !== undefined) st.output = output;
    this.event('step_succeeded', st.name);
    this.stepEnded('succeeded');
    if (this.run.cursor + 1 < this.run.steps.length) this.commandStep(this.run.cursor + 1);
    else this.finish('Succeeded');
  }

  /** A business failure is final: no retry, the step itself needs no compensation. */
  stepFailed(error: StepError): void {
    const st = this.state();
    st.status = 'Failed';
    st.endedAt = iso(this.now);
    st.error = error;
    this.event('step_failed', st.name, error.message);
    this.stepEnded('failed');
    this.beginCompensation({ code: 'step_failed', message: `step ${st.name} failed: ${error.message}` });
  }

  stepTimedOut(): void {
    const st = this.state();
    const step = this.step();
    st.status = 'TimedOut';
    st.error = { code: 'timeout', message: `attempt ${st.attempts} timed out after ${step.timeoutMs}ms` };
    if (st.attempts < step.retry.attempts) {
      const delay = backoffDelayMs(step.retry, st.attempts);
      this.run.awaiting = 'retry';
      this.timer({ kind: 'retry', step: step.name, action: 'do', attempt: st.attempts + 1, at: this.now + delay });
      this.event('step_retried', step.name, `${st.error.message}; attempt ${st.attempts + 1} in ${delay}ms`);
      this.effects.push({ type: 'step-retried', step: step.name });
      return;
    }
    st.endedAt = iso(this.now);
    this.event('step_failed', step.name, `${st.error.message}; no attempts left, the outcome is unknown`);
    this.stepEnded('timed_out');
    this.beginCompensation({ code: 'step_timed_out', message: `step ${step.name} timed out ${st.attempts} time(s)` });
  }

  /** Compensates, in reverse order, every step that completed or whose outcome is unknown. */
  beginCompensation(reason: StepError): void {
    const run = this.run;
    run.phase = 'Compensating';
    run.error = reason;
    const cur = this.state();
    if (cur.status === 'Running') {
      cur.status = 'TimedOut';
      cur.error = { code: 'outcome_unknown', message: `attempt ${cur.attempts} was still out when the run stopped (${reason.code})` };
    }
    if (cur.status === 'TimedOut') cur.endedAt ??= iso(this.now);
    for (const s of run.steps) if (s.status === 'Pending') s.status = 'Skipped';
    this.event('compensating', undefined, reason.message);
    this.compensateFrom(run.cursor);
  }

  private compensateFrom(from: number): void {
    for (let j = from; j >= 0; j--) {
      const status = this.state(j).status;
      if (this.step(j).compensation && (status === 'Succeeded' || status === 'TimedOut')) {
        this.commandCompensation(j);
        return;
      }
    }
    this.finish(this.run.steps.some((s) => s.status === 'CompensationFailed') ? 'Failed' : 'Compensated');
  }

  commandCompensation(i: number): void {
    const st = this.state(i);
    const step = this.step(i);
    st.compensationAttempts += 1;
    if (st.compensationAttempts === 1) st.compensationStartedAt = iso(this.now);
    st.status = 'Compensating';
    this.run.cursor = i;
    this.run.awaiting = 'reply';
    this.command(step, 'compensate', st.compensationAttempts, st.compensationResendOf);
    this.timer({ kind: 'step-timeout', step: step.name, action: 'compensate', attempt: st.compensationAttempts, at: this.now + step.timeoutMs });
    const n = st.compensationAttempts;
    const cap = this.def.compensationRetry.attempts;
    this.event('compensating', step.name, n > 1 ? `compensation attempt ${n}${Number.isFinite(cap) ? ` of ${cap}` : ''}` : undefined);
    if (n === 1) this.effects.push({ type: 'compensation-started', step: step.name });
  }

  stepCompensated(): void {
    const st = this.state();
    st.status = 'Compensated';
    st.compensatedAt = iso(this.now);
    delete st.compensationResendOf;
    this.event('step_compensated', st.name);
    this.compensateFrom(this.run.cursor - 1);
  }

  /**
   * A compensation's failures, injected ones included, are retried with capped backoff until the policy's horizon (or
   * attempt cap); past it the run gives up on this step only, compensates the earlier ones, and ends Failed.
   */
  compensationFailed(error: StepError, timedOut = false): void {
    const st = this.state();
    const policy = this.def.compensationRetry;
    st.error = error;
    const n = st.compensationAttempts;
    // A timeout says nothing of the command: it may still be queued. A failure was its answer: the next is a new one.
    if (timedOut) st.compensationResendOf ??= n;
    else delete st.compensationResendOf;
    const delay = backoffDelayMs(policy, n);
    const since = st.compensationStartedAt ? Date.parse(st.compensationStartedAt) : this.now;
    if (n < policy.attempts && this.now + delay - since <= policy.giveUpAfterMs) {
      this.run.awaiting = 'retry';
      this.timer({ kind: 'compensation-retry', step: st.name, action: 'compensate', attempt: n + 1, at: this.now + delay });
      this.event('step_retried', st.name, `compensation attempt ${n} failed: ${error.message}; attempt ${n + 1} in ${delay}ms`);
      this.effects.push({ type: 'step-retried', step: st.name });
      return;
    }
    st.status = 'CompensationFailed';
    delete st.compensationResendOf;
    const gaveUp = { code: 'compensation_failed', message: `compensation of step ${st.name} gave up after ${n} attempt(s) in ${this.now - since}ms: ${error.message}` };
    // The first give-up names the run's error; a later one is in its step's error and event.
    if (this.run.error?.code !== 'compensation_failed') this.run.error = gaveUp;
    this.event('compensation_failed', st.name, gaveUp.message);
    this.compensateFrom(this.run.cursor - 1);
  }

  private finish(phase: 'Succeeded' | 'Compensated' | 'Failed'): void {
    const run = this.run;
    run.phase = phase;
    run.endedAt = iso(this.now);
    run.awaiting = 'none';
    const outcome = phase.toLowerCase() as SagaOutcome;
    this.event(outcome);
    this.effects.push({ type: 'ended', outcome, durationSeconds: (this.now - run.startedAtMs) / 1000 });
  }
}
