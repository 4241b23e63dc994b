// The run records in KV saga-runs: reads, a cache, and each run's read-decide-write, one at a time, by compare-and-set on the KV revision.
import type { KV } from '@nats-io/kv';
import { isTerminalPhase, isWrongLastSequence } from '@sagamesh/contracts';
import { kvWrite, type Logger, type Publisher } from '@sagamesh/runtime';
import { KeyedLock } from '../keyed-lock.ts';
import { decodeRun, encodeRun, type StoredRun } from '../outbox.ts';

/** A run's record at one KV revision. */
export interface RunRecord {
  revision: number;
  stored: StoredRun;
}

/** What `update`'s decision wants: nothing written (`done`), or `write` this record, then `after` (still exclusive) says the result. */
export type Decision<T> = { done: T } | { write: StoredRun; after: (revision: number) => Promise<T> };

export interface RunStoreOptions {
  /** Writes the records (a JetStreamPublisher in production). */
  js: Publisher;
  /** KV saga-runs, read here; written through `js`. */
  kv: KV;
  bucket: string;
  log: Logger;
}

/** A run's record changed under us more often than this in one input: give up, the input is retried. */
const MAX_CAS_ATTEMPTS = 20;

export class RunStore {
  readonly #js: Publisher;
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #log: Logger;
  // Inputs of one run on this replica would otherwise race each other into compare-and-set conflicts.
  readonly #lock = new KeyedLock();
  /** Records this replica read or wrote, while their run is not terminal. */
  readonly #cache = new Map<string, RunRecord>();

  constructor(opts: RunStoreOptions) {
    this.#js = opts.js;
    this.#kv = opts.kv;
    this.#bucket = opts.bucket;
    this.#log = opts.log;
  }

  /** The record as stored now (a KV read, not the cache). */
  async read(runId: string): Promise<RunRecord | undefined> {
    const e = await this.#kv.get(runId);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return { revision: e.revision, stored: decodeRun(e.value) };
  }

  /** Runs `fn` while no other work of this store on the same run does. */
  exclusive<T>(runId: string, fn: () => Promise<T>): Promise<T> {
    return this.#lock.run(runId, fn);
  }

  /**
   * Reads the run (cache or KV), lets `decide` choose, and writes its record with compare-and-set on the
   * revision read; a conflict means another replica or input won: re-read from KV, re-decide.
   * `assumeNew` (a start): without a cached record the run is taken not to exist, the create's
   * compare-and-set tells otherwise.
   */
  update<T>(runId: string, assumeNew: boolean, decide: (cur: RunRecord | undefined) => Promise<Decision<T>>): Promise<T> {
    return this.exclusive(runId, async () => {
      let fresh = false;
      for (let attempt = 1; ; attempt++) {
        const cached = fresh ? undefined : this.#cache.get(runId);
        const cur = cached ?? (fresh || !assumeNew ? await this.read(runId) : undefined);
        const d = await decide(cur);
        if ('done' in d) return d.done;
        let revision: number;
        try {
          revision = await kvWrite(this.#js, this.#bucket, runId, encodeRun(d.write), cur?.revision ?? 0);
        } catch (err) {
          if (!isWrongLastSequence(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
          this.#log.debug({ runId, attempt }, 'run changed under us; re-reading');
          this.#cache.delete(runId);
          fresh = true;
          continue;
        }
        this.#cache.set(runId, { revision, stored: d.write });
        return d.after(revision);
      }
    });
  }

  /** Caches a record read outside `update` (the sweep's), unless its run ended. */
  keep(runId: string, record: RunRecord): void {
    if (!isTerminalPhase(record.stored.state.phase)) this.#cache.set(runId, record);
  }

  /** A newer revision of a cached record (from the watch) replaces it; uncached runs stay uncached. */
  refresh(runId: string, record: RunRecord): void {
    const cached = this.#cache.get(runId);
    if (cached && cached.revision < record.revision) this.#cache.set(runId, record);
  }

  forget(runId: string): void {
    this.#cache.delete(runId);
  }
}
