// The saga engine: runs each input through the pure transition and publishes the run's outbox once, over the run store, timers, run index and sweeper.
import type { KV } from '@nats-io/kv';
import { isTerminalPhase, type StartRequest } from '@sagamesh/contracts';
import type { Logger, Publisher } from '@sagamesh/runtime';
import type { ResolvedDefinition } from './core/definition.ts';
import { timerId, transition } from './core/transition.ts';
import type { EngineInput, RunState } from './core/types.ts';
import type { DefinitionStore } from './definitions.ts';
import { RunIndex } from './engine/run-index.ts';
import { RunStore, type RunRecord } from './engine/store.ts';
import { Sweeper } from './engine/sweeper.ts';
import { Timers } from './engine/timers.ts';
import type { RunCounts, SagaMetrics } from './metrics.ts';
import { publishOutbox, toOutbox, type OutboxBus, type StoredRun } from './outbox.ts';

export interface EngineOptions {
  /** Publishes the outboxes and writes the run records (a JetStreamPublisher in production). */
  js: Publisher;
  /** Sends the progress events nobody keeps (see isProgressDurable). */
  nc: OutboxBus['nc'];
  /** KV saga-runs, read here; written through `js`. */
  runs: KV;
  runsBucket: string;
  definitions: DefinitionStore;
  log: Logger;
  metrics?: SagaMetrics;
  /**
   * A run untouched this long whose outbox this replica has not published is re-published by the sweep;
   * and a due timer of a run another replica (or an earlier process) wrote fires this much late here,
   * in case its writer is gone.
   */
  sweepGraceMs: number;
  /** Clock (epoch ms); tests may move it. */
  now?: () => number;
}

export interface Applied {
  run: RunState;
  created: boolean;
  changed: boolean;
}

/** How many ended runs this replica remembers as fully published (so their late timers cost no read). */
const FINISHED_MAX = 100_000;

/**
 * For every input: read the run, decide, write the new state together with its outbox with compare-and-set
 * (RunStore), then publish the outbox, then let the caller ack the input. A crash between the write and
 * the publish leaves the outbox in the record: it is published when the input comes back (redelivery) or
 * by the sweep, with the same de-dup ids.
 *
 * Durable timers are the record's own `timers`: the replica that wrote a run wakes it when a timer is due;
 * every replica also learns all runs' timers from its watch of the bucket (RunIndex) and fires those of
 * runs it did not write `sweepGraceMs` late, so a run whose writer died (or restarted) is woken all the same.
 */
export class Engine implements RunCounts {
  readonly #bus: OutboxBus;
  readonly #defs: DefinitionStore;
  readonly #log: Logger;
  readonly #metrics: SagaMetrics | undefined;
  readonly #graceMs: number;
  readonly #now: () => number;
  readonly #store: RunStore;
  readonly #timers: Timers;
  readonly #index: RunIndex;
  readonly #sweeper: Sweeper;
  /** Run id → the version whose outbox this replica has published. */
  readonly #published = new Map<string, number>();
  /** Ended runs whose final outbox this replica published: later inputs for them are no-ops. */
  readonly #finished = new Set<string>();

  constructor(opts: EngineOptions) {
    this.#bus = { js: opts.js, nc: opts.nc };
    this.#defs = opts.definitions;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#graceMs = opts.sweepGraceMs;
    this.#now = opts.now ?? Date.now;
    this.#store = new RunStore({ js: opts.js, kv: opts.runs, bucket: opts.runsBucket, log: opts.log });
    this.#timers = new Timers({ fire: (runId, timer) => this.input(runId, { type: 'timer', timer }, timerId(timer)), log: opts.log, now: this.#now });
    this.#index = new RunIndex({ kv: opts.runs, log: opts.log, onChange: (runId, record) => this.#changedElsewhere(runId, record) });
    this.#sweeper = new Sweeper({
      runs: () => this.#index.entries(),
      publishedVersion: (runId) => this.#published.get(runId),
      store: this.#store,
      ensurePublished: (runId, record) => this.#ensurePublished(runId, record),
      graceMs: opts.sweepGraceMs,
      now: this.#now,
      log: opts.log,
    });
  }

  /** Start a run; idempotent by run id (an existing run is returned with created=false, whatever the request says). */
  start(req: StartRequest, causationId?: string): Promise<Applied> {
    const input: EngineInput = {
      type: 'start',
      runId: req.runId,
      origin: req.origin,
      input: req.input,
      ...(req.faults ? { faults: req.faults } : {}),
      ...(req.traceparent ? { traceparent: req.traceparent } : {}),
    };
    return this.#apply(req.runId, input, causationId, () => this.#defs.forStart(req.definitionKey, req.revision)) as Promise<Applied>;
  }

  /** Cancel: compensate what is done. Undefined when there is no such run. */
  cancel(runId: string, reason?: string): Promise<Applied | undefined> {
    return this.#apply(runId, { type: 'cancel', ...(reason ? { reason } : {}) });
  }

  /** A reply or a due timer. 'unknown' when the run does not exist. */
  async input(runId: string, input: EngineInput, causationId: string): Promise<'applied' | 'ignored' | 'unknown'> {
    if (this.#finished.has(runId)) return 'ignored';
    const r = await this.#apply(runId, input, causationId);
    return !r ? 'unknown' : r.changed ? 'applied' : 'ignored';
  }

  /** The run as stored now (a KV read: the store, not this replica's cache, is the truth). */
  async get(runId: string): Promise<RunState | undefined> {
    return (await this.#store.read(runId))?.stored.state;
  }

  /** Cancels every wake-up (shutdown): the records keep the timers for whoever runs next. */
  stopTimers(): void {
    this.#timers.stop();
  }

  /** Starts watching saga-runs (all current values, then every change); resolves once the watch is open. */
  startWatch(): Promise<void> {
    return this.#index.start();
  }

  stopWatch(): Promise<void> {
    return this.#index.stop();
  }

  watching(): boolean {
    return this.#index.open();
  }

  counts(now: number): Map<string, { inFlight: number; stuck: number }> {
    return this.#index.counts(now);
  }

  /** Re-publishes the outboxes nobody published (see Sweeper); returns how many runs it flushed. */
  sweep(limit?: number): Promise<number> {
    return this.#sweeper.sweep(limit);
  }

  async #definition(state: RunState): Promise<ResolvedDefinition> {
    const d = await this.#defs.get(state.definitionKey, state.revision);
    if (!d) throw new Error(`run ${state.runId} is pinned to definition ${state.definitionKey}@${state.revision}, which is not in the store`);
    return d;
  }

  #apply(runId: string, input: EngineInput, causationId?: string, startDefinition?: () => Promise<ResolvedDefinition>): Promise<Applied | undefined> {
    return this.#store.update<Applied | undefined>(runId, input.type === 'start', async (cur) => {
      if (cur && input.type === 'start') {
        await this.#ensurePublished(runId, cur);
        return { done: { run: cur.stored.state, created: false, changed: false } };
      }
      if (!cur && input.type !== 'start') return { done: undefined };
      const def = cur ? await this.#definition(cur.stored.state) : await startDefinition!();
      const { run, effects } = transition(cur?.stored.state, def, input, this.#now());
      if (cur) await this.#ensurePublished(runId, cur);
      if (effects.length === 0) return { done: { run, created: false, changed: false } };

      const stored: StoredRun = { state: run, outbox: toOutbox(run, effects), ...(causationId ? { causationId } : {}) };
      const after = async (revision: number): Promise<Applied> => {
        this.#index.wrote(revision, run);
        this.#timers.schedule(run, 0);
        await publishOutbox(this.#bus, stored);
        this.#markPublished(run);
        if (!cur) this.#metrics?.started(def.key, def.steps.map((s) => s.name));
        this.#metrics?.record(def.key, effects);
        return { run, created: !cur, changed: true };
      };
      return { write: stored, after };
    });
  }

  /** Publishes the record's outbox unless this replica already did (it may come from a crashed writer). */
  async #ensurePublished(runId: string, cur: RunRecord): Promise<boolean> {
    const { state } = cur.stored;
    if (this.#published.get(runId) === state.version || (isTerminalPhase(state.phase) && this.#finished.has(runId))) return false;
    const n = await publishOutbox(this.#bus, cur.stored);
    if (n > 0) this.#log.info({ runId, version: state.version, messages: n }, 're-published an outbox');
    this.#markPublished(state);
    return true;
  }

  #markPublished(state: RunState): void {
    if (isTerminalPhase(state.phase)) {
      this.#timers.unschedule(state.runId);
      this.#published.delete(state.runId);
      this.#store.forget(state.runId);
      this.#finished.add(state.runId);
      if (this.#finished.size > FINISHED_MAX) this.#finished.delete(this.#finished.values().next().value!);
    } else {
      this.#published.set(state.runId, state.version);
    }
  }

  /** Another writer changed or deleted the run: wake it from its timers late, and drop what it made stale. */
  #changedElsewhere(runId: string, record: RunRecord | undefined): void {
    if (!record) {
      this.#store.forget(runId);
      this.#published.delete(runId);
      this.#timers.unschedule(runId);
      return;
    }
    this.#timers.schedule(record.stored.state, this.#graceMs);
    if (isTerminalPhase(record.stored.state.phase)) {
      // Ended elsewhere: drop what we hold (whoever ended it publishes its outbox).
      this.#store.forget(runId);
      this.#published.delete(runId);
    } else {
      this.#store.refresh(runId, record);
    }
  }
}
