/** KvBooks: the books of a KV bucket, kept as the sum of its records' contributions by a watch. */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { RunOrigins, type RunOrigin } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';

export type Books = Record<string, number>;

/**
 * What one record adds to the books, and whether it is settled: a settled record's key is never written
 * again (until the bucket is purged), so the books need not remember what it added.
 */
export interface Contribution {
  books: Books;
  settled: boolean;
}

/** A record's counters as its contribution to books kept per origin: keyed `<origin>.<counter>`. */
export function perOrigin(origin: RunOrigin, counters: Record<string, number>): Books {
  return Object.fromEntries(Object.entries(counters).map(([counter, n]) => [`${origin}.${counter}`, n]));
}

/** The books of each origin from the sum of `perOrigin` contributions: every one of `counters`, 0 where none counted. */
export function booksPerOrigin<C extends string>(totals: Books, counters: readonly C[]): Record<RunOrigin, Record<C, number>> {
  const booksOf = (origin: RunOrigin) => Object.fromEntries(counters.map((c) => [c, totals[`${origin}.${c}`] ?? 0])) as Record<C, number>;
  return Object.fromEntries(RunOrigins.map((origin) => [origin, booksOf(origin)])) as Record<RunOrigin, Record<C, number>>;
}

/** `totals` + `add` − `remove`, in place. Pure arithmetic of the books (property-tested). */
export function applyDelta(totals: Books, add: Books, remove: Books = {}): Books {
  for (const [k, v] of Object.entries(remove)) totals[k] = (totals[k] ?? 0) - v;
  for (const [k, v] of Object.entries(add)) totals[k] = (totals[k] ?? 0) + v;
  return totals;
}

/**
 * The counting rule of KvBooks, pure: the sum of the contributions of each key's latest record, from the
 * records of each key in the order they were written, any of them but the latest possibly missing. It
 * remembers only the records not settled yet: a record of a key it does not remember is the first it
 * counts for that key (a settled key is never written again), so it adds its whole contribution.
 */
export class Tally<V> {
  readonly totals: Books = {};
  readonly #unsettled = new Map<string, { value: V; books: Books }>();

  /** Counts `key`'s newest record. */
  put(key: string, value: V, c: Contribution): void {
    this.delete(key);
    applyDelta(this.totals, c.books);
    if (!c.settled) this.#unsettled.set(key, { value, books: c.books });
  }

  /** Takes `key`'s contribution back; false when not remembered (settled, or never counted: which, it cannot tell). */
  delete(key: string): boolean {
    const before = this.#unsettled.get(key);
    if (!before) return false;
    applyDelta(this.totals, {}, before.books);
    return this.#unsettled.delete(key);
  }

  /** Values of the records not settled yet. */
  unsettled(): IterableIterator<[string, V]> {
    return Array.from(this.#unsettled, ([key, u]): [string, V] => [key, u.value]).values();
  }

  get remembered(): number {
    return this.#unsettled.size;
  }
}

/**
 * Sums numeric contributions of every current value of a bucket, kept current by a KV watch started on
 * first use. `totals()` first waits until the watch has seen the bucket's last revision at call time,
 * so it reflects every write that completed before the call.
 *
 * Memory is bounded by the records not settled yet, not by the bucket: a record seen for a key is either
 * still remembered (not settled: its contribution is taken back when the key changes) or settled, and a
 * settled key is never written again; so a record of a key not remembered is the key's first the books
 * see, and adds its whole contribution. That holds whichever revisions the watch skips (with history 1, a
 * revision replaced before the watch reaches it is never delivered; the watch's `isUpdate` only counts the
 * first deliveries, so it is not used). A purge of the bucket removes settled records: `totals()` notices
 * (the bucket's first sequence passes the oldest settled record counted) and reads the bucket again; so
 * does a deleted key the books do not remember.
 */
export class KvBooks<V = unknown> {
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #contribute: (key: string, value: V) => Contribution;
  readonly #log: Logger;
  #tally = new Tally<V>();
  #revision = 0;
  /** The oldest settled record counted: it stays in the bucket unless the bucket is purged. */
  #oldestSettled = Number.POSITIVE_INFINITY;
  /** The bucket's last sequence before the watch began: a delete at or before it removed nothing counted. */
  #startSeq = 0;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #starting: Promise<void> | undefined;
  /** Bumped whenever the books forget: a watch of an older generation no longer touches them. */
  #generation = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];

  constructor(kv: KV, bucket: string, contribute: (key: string, value: V) => Contribution, log: Logger) {
    this.#kv = kv;
    this.#bucket = bucket;
    this.#contribute = contribute;
    this.#log = log;
  }

  async totals(timeoutMs = 10_000): Promise<Books> {
    for (;;) {
      for (let generation = -1; generation !== this.#generation; ) {
        generation = this.#generation;
        if (!this.#starting) {
          // A start that failed (NATS away) is tried again by the next totals(), not remembered.
          const starting: Promise<void> = this.#start().catch((err: unknown) => {
            if (this.#starting === starting) this.#starting = undefined;
            throw err;
          });
          this.#starting = starting;
        }
        await this.#starting;
      }
      const generation = this.#generation;
      const { first_seq: first, last_seq: last, messages } = (await this.#kv.status()).streamInfo.state;
      // The books forgot meanwhile (their watch ended or met a delete): start again, or nothing would catch up.
      if (generation !== this.#generation) continue;
      if (first > this.#oldestSettled) {
        this.#restart('the bucket was purged since the books read it');
        continue;
      }
      // An empty bucket (purged) has nothing to wait for, whatever its last sequence.
      if (this.#revision < last && messages > 0) await this.#caughtUp(last, timeoutMs);
      if (generation === this.#generation) return { ...this.#tally.totals };
    }
  }

  /** Values of the records not settled yet, as of the last totals(): bounded by them, not by the bucket. */
  unsettled(): IterableIterator<[string, V]> {
    return this.#tally.unsettled();
  }

  /** How many records the books remember (those not settled yet). */
  get remembered(): number {
    return this.#tally.remembered;
  }

  stop(): void {
    this.#watch?.stop();
  }

  /** Forgets everything; the next totals() reads the bucket again (after it was purged and refilled). */
  reset(): void {
    this.#watch?.stop();
    this.#forget();
  }

  #restart(reason: string): void {
    this.#log.warn({ bucket: this.#bucket, reason }, 'the books read the bucket again');
    this.reset();
  }

  /** A new generation: the watch of the old one no longer touches the books. */
  #forget(): void {
    this.#generation++;
    this.#watch = undefined;
    this.#starting = undefined;
    this.#tally = new Tally<V>();
    this.#revision = 0;
    this.#oldestSettled = Number.POSITIVE_INFINITY;
    // A totals() waiting on the ended watch asks the new one.
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }

  async #caughtUp(revision: number, timeoutMs: number): Promise<void> {
    const caughtUp = new Promise<void>((resolve) => this.#waiters.push({ revision, resolve }));
    const ac = new AbortController();
    const timeout = sleepFor(timeoutMs, undefined, { signal: ac.signal, ref: false }).then(() => {
      throw new Error(`the books of bucket ${this.#bucket} did not catch up with revision ${revision} within ${timeoutMs} ms`);
    });
    try {
      await Promise.race([caughtUp, timeout]);
    } finally {
      ac.abort();
    }
  }

  /** Counts one record; false when the books cannot tell what it changes (they must read the bucket again). */
  #apply(e: KvWatchEntry): boolean {
    if (e.operation === 'PUT') {
      const read = this.#read(e);
      // An unreadable record adds nothing, so a later record of its key adds all of its own.
      if (!read) this.#tally.delete(e.key);
      else {
        this.#tally.put(e.key, read.value, read.contribution);
        if (read.contribution.settled) this.#oldestSettled = Math.min(this.#oldestSettled, e.revision);
      }
    } else if (!this.#tally.delete(e.key) && e.revision > this.#startSeq) {
      // Deleted after the watch began, but not remembered: it may have been a settled record counted.
      return false;
    }
    this.#revision = Math.max(this.#revision, e.revision);
    this.#waiters = this.#waiters.filter((w) => (w.revision <= this.#revision ? (w.resolve(), false) : true));
    return true;
  }

  #read(e: KvWatchEntry): { value: V; contribution: Contribution } | undefined {
    try {
      const value = e.json<V>();
      return { value, contribution: this.#contribute(e.key, value) };
    } catch (err) {
      this.#log.error({ err, bucket: this.#bucket, key: e.key }, 'unreadable record left out of the books');
      return undefined;
    }
  }

  async #start(): Promise<void> {
    const generation = this.#generation;
    const startSeq = (await this.#kv.status()).streamInfo.state.last_seq;
    const watch = await this.#kv.watch();
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    this.#startSeq = startSeq;
    this.#watch = watch;
    void (async () => {
      try {
        for await (const e of watch) {
          if (generation !== this.#generation) break;
          if (!this.#apply(e)) {
            this.#restart(`key ${e.key} was deleted`);
            return;
          }
        }
      } catch (err) {
        this.#log.warn({ err }, 'books watch failed; it restarts on the next query');
      }
      // Ended (stopped or failed): forget everything, the next totals() rebuilds from the bucket.
      if (generation === this.#generation) this.#forget();
    })();
  }
}
