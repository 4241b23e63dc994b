import type { Fault, RunOrigin, RunView, SagaEventName, SagaPhase, StepCommand, StepError, StepReply, StepState } from '@sagamesh/contracts';

export type StepAction = 'do' | 'compensate';

/**
 * The engine's state of one run, persisted as is (JSON) in KV `saga-runs`.
 * `steps` holds the public per-step state; `cursor` + `awaiting` say what the run waits for,
 * which is all the transition function needs to tell a current reply or timer from a stale one
 * (a timer is valid only while it matches the cursor). `timers` are the run's durable timers:
 * the ones issued that are still live, so the stored record alone says when the run must be woken.
 */
export interface RunState {
  runId: string;
  definitionKey: string;
  revision: string;
  origin: RunOrigin;
  input: Record<string, unknown>;
  faults?: Fault[];
  traceparent?: string;
  phase: SagaPhase;
  steps: StepState[];
  /** Index of the step being run (Running) or compensated (Compensating). */
  cursor: number;
  /** 'reply': a command for the cursor step's current attempt is out; 'retry': a retry timer is; 'none': terminal. */
  awaiting: 'reply' | 'retry' | 'none';
  startedAt: string;
  startedAtMs: number;
  /** When the overall deadline passes (epoch ms): past it a non-terminal run is stuck. */
  deadlineAt: number;
  updatedAtMs: number;
  endedAt?: string;
  error?: StepError;
  /** +1 on every change; feeds RunView.version and the de-dup ids of the run's events. */
  version: number;
  /** Timers issued and still live (firing one would change the run); empty once terminal. */
  timers: TimerPayload[];
}

export type TimerKind = 'step-timeout' | 'retry' | 'deadline' | 'compensation-retry';

/** A durable timer's payload (kept in RunState.timers, handed back to transition when due). */
export interface TimerPayload {
  runId: string;
  kind: TimerKind;
  /** Due time, epoch ms. */
  at: number;
  step?: string;
  action?: StepAction;
  /** step-timeout: the attempt that times out; retry/compensation-retry: the attempt to start. */
  attempt?: number;
}

export interface StartInput {
  type: 'start';
  runId: string;
  origin: RunOrigin;
  input: Record<string, unknown>;
  faults?: Fault[];
  traceparent?: string;
}

export type EngineInput =
  | StartInput
  | { type: 'reply'; reply: StepReply }
  | { type: 'timer'; timer: TimerPayload }
  | { type: 'cancel'; reason?: string };

export type SagaOutcome = 'succeeded' | 'compensated' | 'failed';
export type StepOutcome = 'succeeded' | 'failed' | 'timed_out';

export type CommandEffect = { type: 'command'; subject: string; msgId: string; command: StepCommand };
export type TimerEffect = { type: 'timer'; id: string; at: number; timer: TimerPayload };
export type EventEffect = { type: 'event'; event: SagaEventName; step?: string; message?: string; run: RunView };

/**
 * What the engine does after persisting the new state. Commands and events are published (they go
 * to the outbox first); timers are already in the state (RunState.timers); the rest only feed this
 * replica's metrics.
 */
export type Effect =
  | CommandEffect
  | TimerEffect
  | EventEffect
  | { type: 'ended'; outcome: SagaOutcome; durationSeconds: number }
  | { type: 'step-ended'; step: string; outcome: StepOutcome; durationSeconds: number }
  | { type: 'step-retried'; step: string }
  | { type: 'compensation-started'; step: string };

export interface TransitionResult {
  run: RunState;
  /** Empty iff the input was ignored; then `run` is the very object passed in. */
  effects: Effect[];
}
