// Wakes each run in memory at its earliest durable timer (plus a grace) and fires its due timers, oldest first.
import { isTerminalPhase } from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/runtime';
import type { RunState, TimerPayload } from '../core/types.ts';

/** A firing that failed (the store is unavailable) is tried again this much later, as a redelivery would. */
const RETRY_AFTER_MS = 1000;

interface Wakeup {
  at: number;
  handle: NodeJS.Timeout;
  timers: TimerPayload[];
  graceMs: number;
}

export interface TimersOptions {
  /** Fires one due timer (an engine input); a rejection has it and the later ones tried again. */
  fire: (runId: string, timer: TimerPayload) => Promise<unknown>;
  log: Logger;
  now: () => number;
}

/**
 * The timers themselves are durable (RunState.timers, written with the state); this only decides when to
 * look at them. A timer fired twice, or after the run moved on, changes nothing (the transition ignores a
 * timer that is not live).
 */
export class Timers {
  readonly #fire: TimersOptions['fire'];
  readonly #log: Logger;
  readonly #now: () => number;
  /** Run id → the wake-up for its earliest timer. */
  readonly #wakeups = new Map<string, Wakeup>();
  #stopped = false;

  constructor(opts: TimersOptions) {
    this.#fire = opts.fire;
    this.#log = opts.log;
    this.#now = opts.now;
  }

  /** Plans the wake-up of a run from its (stored) state: at its earliest live timer, `graceMs` late. */
  schedule(state: RunState, graceMs: number): void {
    this.#plan(state.runId, isTerminalPhase(state.phase) ? [] : state.timers, graceMs);
  }

  unschedule(runId: string): void {
    const prev = this.#wakeups.get(runId);
    if (!prev) return;
    clearTimeout(prev.handle);
    this.#wakeups.delete(runId);
  }

  /** Cancels every wake-up (shutdown): the records keep the timers for whoever runs next. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#wakeups.values()) clearTimeout(w.handle);
    this.#wakeups.clear();
  }

  /** Wakes the run at its earliest timer + `graceMs`, but not before `notBefore` (epoch ms). */
  #plan(runId: string, timers: TimerPayload[], graceMs: number, notBefore = 0): void {
    if (timers.length === 0 || this.#stopped) return this.unschedule(runId);
    const at = Math.max(notBefore, Math.min(...timers.map((t) => t.at)) + graceMs);
    const prev = this.#wakeups.get(runId);
    if (prev && prev.at === at) {
      prev.timers = timers;
      prev.graceMs = graceMs;
      return;
    }
    if (prev) clearTimeout(prev.handle);
    const handle = setTimeout(() => void this.#wake(runId), Math.max(0, at - this.#now()));
    handle.unref();
    this.#wakeups.set(runId, { at, handle, timers, graceMs });
  }

  /** Fires the run's due timers, oldest first; a firing that writes the run plans its next wake-up. */
  async #wake(runId: string): Promise<void> {
    const w = this.#wakeups.get(runId);
    if (!w || this.#stopped) return;
    this.#wakeups.delete(runId);
    const now = this.#now();
    const due = w.timers.filter((t) => t.at + w.graceMs <= now).sort((a, b) => a.at - b.at);
    // The timers not due yet stay planned (a write below replaces the plan with the new state's).
    this.#plan(runId, w.timers.filter((t) => t.at + w.graceMs > now), w.graceMs);
    for (const [i, timer] of due.entries()) {
      try {
        await this.#fire(runId, timer);
      } catch (err) {
        this.#log.warn({ err, runId, timer: timer.kind }, 'firing a timer failed; trying again in 1 s');
        this.#plan(runId, [...due.slice(i), ...(this.#wakeups.get(runId)?.timers ?? [])], w.graceMs, this.#now() + RETRY_AFTER_MS);
        return;
      }
    }
  }
}
