import { setTimeout as sleep } from 'node:timers/promises';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { isTerminalPhase, type StartRequest } from '@sagamesh/contracts';
import { kvWrite, type Logger, type Publisher } from '@sagamesh/kit';
import type { ResolvedDefinition } from './core/definition.ts';
import { timerId, transition } from './core/transition.ts';
import type { EngineInput, RunState, TimerPayload } from './core/types.ts';
import type { DefinitionStore } from './definitions.ts';
import { forEachLimit, KeyedLock } from './keyed-lock.ts';
import type { RunCounts, SagaMetrics } from './metrics.ts';
import { decodeRun, encodeRun, publishOutbox, toOutbox, type StoredRun } from './outbox.ts';

export interface EngineOptions {
  /** Publishes the outboxes and writes the run records (a JetStreamPublisher in production). */
  js: Publisher;
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

interface Cached {
  revision: number;
  stored: StoredRun;
}

interface IndexEntry {
  definitionKey: string;
  deadlineAt: number;
  version: number;
  updatedAtMs: number;
}

export interface Applied {
  run: RunState;
  created: boolean;
  changed: boolean;
}

/** A run's record changed under us more often than this in one input: give up, the input is retried. */
const MAX_CAS_ATTEMPTS = 20;
/** How many ended runs this replica remembers as fully published (so their late timers cost no read). */
const FINISHED_MAX = 100_000;

function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/**
 * The I/O around the pure transition. For every input: read the run (cache or KV), decide, write the
 * new state together with its outbox with compare-and-set on the KV revision (a conflict means another
 * replica or input won: re-read, re-decide), then publish the outbox, then let the caller ack the
 * input. A crash between the write and the publish leaves the outbox in the record: it is published
 * when the input comes back (redelivery) or by the sweep, with the same de-dup ids.
 *
 * Durable timers are the record's own `timers` (written with the state by the same compare-and-set):
 * the replica that wrote a run wakes it in memory when a timer is due; every replica also learns all
 * runs' timers from its watch of the bucket and fires those of runs it did not write `sweepGraceMs`
 * late, so a run whose writer died (or restarted) is woken all the same. A timer fired twice, or
 * after the run moved on, changes nothing (the transition ignores a timer that is not live).
 */
export class Engine implements RunCounts {
  readonly #js: Publisher;
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #defs: DefinitionStore;
  readonly #log: Logger;
  readonly #metrics: SagaMetrics | undefined;
  readonly #graceMs: number;
  readonly #now: () => number;
  readonly #lock = new KeyedLock();
  /** Records this replica read or wrote, while their run is not terminal. */
  readonly #cache = new Map<string, Cached>();
  /** Run id → the version whose outbox this replica has published. */
  readonly #published = new Map<string, number>();
  /** Ended runs whose final outbox this replica published: later inputs for them are no-ops. */
  readonly #finished = new Set<string>();
  /** Non-terminal runs of the whole bucket (from the watch and our own writes). */
  readonly #index = new Map<string, IndexEntry>();
  /** KV revisions this replica wrote, so the watch need not decode them again. */
  readonly #ownWrites = new Map<string, number>();
  /** Run id → the in-memory wake-up for its earliest timer. */
  readonly #wakeups = new Map<string, { at: number; handle: NodeJS.Timeout; timers: TimerPayload[]; graceMs: number }>();
  #timersStopped = false;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #watching: Promise<void> | undefined;
  #watchOpen = false;
  #watchStopping = false;
  #sweeping = false;

  constructor(opts: EngineOptions) {
    this.#js = opts.js;
    this.#kv = opts.runs;
    this.#bucket = opts.runsBucket;
    this.#defs = opts.definitions;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#graceMs = opts.sweepGraceMs;
    this.#now = opts.now ?? Date.now;
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
    return (await this.#read(runId))?.stored.state;
  }

  async #read(runId: string): Promise<Cached | undefined> {
    const e = await this.#kv.get(runId);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return { revision: e.revision, stored: decodeRun(e.value) };
  }

  async #definition(state: RunState): Promise<ResolvedDefinition> {
    const d = await this.#defs.get(state.definitionKey, state.revision);
    if (!d) throw new Error(`run ${state.runId} is pinned to definition ${state.definitionKey}@${state.revision}, which is not in the store`);
    return d;
  }

  #apply(runId: string, input: EngineInput, causationId?: string, startDefinition?: () => Promise<ResolvedDefinition>): Promise<Applied | undefined> {
    return this.#lock.run(runId, async () => {
      let fresh = false;
      for (let attempt = 1; ; attempt++) {
        // A start assumes a new run unless known here: the create's compare-and-set tells otherwise.
        const cached = fresh ? undefined : this.#cache.get(runId);
        const cur = cached ?? (fresh || input.type !== 'start' ? await this.#read(runId) : undefined);
        if (cur && input.type === 'start') {
          await this.#ensurePublished(runId, cur);
          return { run: cur.stored.state, created: false, changed: false };
        }
        if (!cur && input.type !== 'start') return undefined;
        const def = cur ? await this.#definition(cur.stored.state) : await startDefinition!();
        const { run, effects } = transition(cur?.stored.state, def, input, this.#now());
        if (cur) await this.#ensurePublished(runId, cur);
        if (effects.length === 0) return { run, created: false, changed: false };

        const stored: StoredRun = { state: run, outbox: toOutbox(run, effects), ...(causationId ? { causationId } : {}) };
        let revision: number;
        try {
          revision = await kvWrite(this.#js, this.#bucket, runId, encodeRun(stored), cur?.revision ?? 0);
        } catch (err) {
          if (!isConflict(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
          this.#log.debug({ runId, attempt }, 'run changed under us; re-reading');
          this.#cache.delete(runId);
          fresh = true;
          continue;
        }
        this.#remember(runId, revision, stored);
        this.#schedule(run, 0);
        await publishOutbox(this.#js, stored);
        this.#markPublished(stored.state);
        if (!cur) this.#metrics?.started(def.key, def.steps.map((s) => s.name));
        this.#metrics?.record(def.key, effects);
        return { run, created: !cur, changed: true };
      }
    });
  }

  /** Publishes the record's outbox unless this replica already did (it may come from a crashed writer). */
  async #ensurePublished(runId: string, cur: Cached): Promise<boolean> {
    const { state } = cur.stored;
    if (this.#published.get(runId) === state.version || (isTerminalPhase(state.phase) && this.#finished.has(runId))) return false;
    const n = await publishOutbox(this.#js, cur.stored);
    if (n > 0) this.#log.info({ runId, version: state.version, messages: n }, 're-published an outbox');
    this.#markPublished(state);
    return true;
  }

  #remember(runId: string, revision: number, stored: StoredRun): void {
    this.#cache.set(runId, { revision, stored });
    this.#ownWrites.set(runId, revision);
    this.#indexState(stored.state);
  }

  #markPublished(state: RunState): void {
    if (isTerminalPhase(state.phase)) {
      this.#unschedule(state.runId);
      this.#published.delete(state.runId);
      this.#cache.delete(state.runId);
      this.#finished.add(state.runId);
      if (this.#finished.size > FINISHED_MAX) this.#finished.delete(this.#finished.values().next().value!);
    } else {
      this.#published.set(state.runId, state.version);
    }
  }

  #indexState(state: RunState): void {
    if (isTerminalPhase(state.phase)) this.#index.delete(state.runId);
    else this.#index.set(state.runId, { definitionKey: state.definitionKey, deadlineAt: state.deadlineAt, version: state.version, updatedAtMs: state.updatedAtMs });
  }

  // ---- durable timers, woken in memory ----

  /** Plans the wake-up of a run from its (stored) state: at its earliest live timer, `graceMs` late. */
  #schedule(state: RunState, graceMs: number): void {
    this.#plan(state.runId, isTerminalPhase(state.phase) ? [] : state.timers, graceMs);
  }

  /** Wakes the run at its earliest timer + `graceMs`, but not before `notBefore` (epoch ms). */
  #plan(runId: string, timers: TimerPayload[], graceMs: number, notBefore = 0): void {
    if (timers.length === 0 || this.#timersStopped) return this.#unschedule(runId);
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

  #unschedule(runId: string): void {
    const prev = this.#wakeups.get(runId);
    if (!prev) return;
    clearTimeout(prev.handle);
    this.#wakeups.delete(runId);
  }

  /** Fires the run's due timers, oldest first; a firing that writes the run plans its next wake-up. */
  async #wake(runId: string): Promise<void> {
    const w = this.#wakeups.get(runId);
    if (!w || this.#timersStopped) return;
    this.#wakeups.delete(runId);
    const now = this.#now();
    const due = w.timers.filter((t) => t.at + w.graceMs <= now).sort((a, b) => a.at - b.at);
    // The timers not due yet stay planned (a write below replaces the plan with the new state's).
    this.#plan(runId, w.timers.filter((t) => t.at + w.graceMs > now), w.graceMs);
    for (const [i, timer] of due.entries()) {
      try {
        await this.input(runId, { type: 'timer', timer }, timerId(timer));
      } catch (err) {
        // The store is unavailable: fire the rest a second later, as a redelivery would.
        this.#log.warn({ err, runId, timer: timer.kind }, 'firing a timer failed; trying again in 1 s');
        this.#plan(runId, [...due.slice(i), ...(this.#wakeups.get(runId)?.timers ?? [])], w.graceMs, this.#now() + 1000);
        return;
      }
    }
  }

  /** Cancels every wake-up (shutdown): the records keep the timers for whoever runs next. */
  stopTimers(): void {
    this.#timersStopped = true;
    for (const w of this.#wakeups.values()) clearTimeout(w.handle);
    this.#wakeups.clear();
  }

  // ---- the run index: a watch of the whole bucket ----

  /** Starts watching saga-runs (all current values, then every change); resolves once the watch is open. */
  async startWatch(): Promise<void> {
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    this.#watching = (async () => {
      while (!this.#watchStopping) {
        try {
          const watch = await this.#kv.watch();
          this.#watch = watch;
          this.#watchOpen = true;
          opened();
          for await (const e of watch) {
            try {
              this.#onWatch(e);
            } catch (err) {
              this.#log.warn({ err, runId: e.key, revision: e.revision }, 'unreadable run record in the watch');
            }
          }
        } catch (err) {
          if (!this.#watchStopping) this.#log.error({ err }, 'run watch failed');
        } finally {
          this.#watchOpen = false;
        }
        if (!this.#watchStopping) {
          this.#log.warn('run watch ended; restarting');
          await sleep(1000);
        }
      }
    })();
    await open;
  }

  #onWatch(e: KvWatchEntry): void {
    const runId = e.key;
    const own = this.#ownWrites.get(runId);
    if (own !== undefined) {
      if (e.revision === own) this.#ownWrites.delete(runId);
      if (e.revision <= own) return;
      this.#ownWrites.delete(runId);
    }
    if (e.operation !== 'PUT' || e.value.length === 0) {
      this.#index.delete(runId);
      this.#cache.delete(runId);
      this.#published.delete(runId);
      this.#unschedule(runId);
      return;
    }
    const stored = decodeRun(e.value);
    this.#schedule(stored.state, this.#graceMs);
    const cached = this.#cache.get(runId);
    if (isTerminalPhase(stored.state.phase)) {
      // Ended elsewhere: drop what we hold (whoever ended it publishes its outbox).
      this.#cache.delete(runId);
      this.#published.delete(runId);
    } else if (cached && cached.revision < e.revision) {
      this.#cache.set(runId, { revision: e.revision, stored });
    }
    this.#indexState(stored.state);
  }

  async stopWatch(): Promise<void> {
    this.#watchStopping = true;
    this.#watch?.stop();
    await this.#watching;
  }

  watching(): boolean {
    return this.#watchOpen;
  }

  counts(now: number): Map<string, { inFlight: number; stuck: number }> {
    const out = new Map<string, { inFlight: number; stuck: number }>();
    for (const e of this.#index.values()) {
      const c = out.get(e.definitionKey) ?? { inFlight: 0, stuck: 0 };
      c.inFlight++;
      if (e.deadlineAt < now) c.stuck++;
      out.set(e.definitionKey, c);
    }
    return out;
  }

  // ---- the sweep: outboxes nobody published ----

  /**
   * Re-publishes the outbox of every non-terminal run untouched for the grace period whose current
   * version this replica has not published (after a crash: everything the dead process left).
   * Returns how many runs it flushed.
   */
  async sweep(limit = 32): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    let flushed = 0;
    try {
      const now = this.#now();
      const due = [...this.#index].filter(([runId, e]) => now - e.updatedAtMs >= this.#graceMs && this.#published.get(runId) !== e.version).map(([runId]) => runId);
      await forEachLimit(due, limit, async (runId) => {
        try {
          await this.#lock.run(runId, async () => {
            const cur = await this.#read(runId);
            // Changed since the index saw it: its writer is at work and publishes it.
            if (!cur || this.#now() - cur.stored.state.updatedAtMs < this.#graceMs) return;
            if (!isTerminalPhase(cur.stored.state.phase)) this.#cache.set(runId, cur);
            if (await this.#ensurePublished(runId, cur)) flushed++;
          });
        } catch (err) {
          this.#log.warn({ err, runId }, 'sweep could not publish an outbox; will try again');
        }
      });
    } finally {
      this.#sweeping = false;
    }
    return flushed;
  }
}
