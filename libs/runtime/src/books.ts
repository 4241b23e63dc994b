/** KvBooks: the books of a KV bucket, kept as the sum of its records' contributions by a watch. */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { RunOrigins, type RunOrigin } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';

export type Books = Record<string, number>;

/** A record's counters as its contribution to books kept per origin: keyed `<origin>.<counter>`. */
export function perOrigin(origin: RunOrigin, counters: Record<string, number>): Books {
  return Object.fromEntries(Object.entries(counters).map(([counter, n]) => [`${origin}.${counter}`, n]));
}

/** The books of each origin from the sum of `perOrigin` contributions: every one of `counters`, 0 where none counted. */
export function booksPerOrigin<C extends string>(totals: Books, counters: readonly C[]): Record<RunOrigin, Record<C, number>> {
  const booksOf = (origin: RunOrigin) => Object.fromEntries(counters.map((c) => [c, totals[`${origin}.${c}`] ?? 0])) as Record<C, number>;
  return Object.fromEntries(RunOrigins.map((origin) => [origin, booksOf(origin)])) as Record<RunOrigin, Record<C, number>>;
}

/**
 * Sums numeric contributions of every current value of a bucket, kept current by a KV watch started on
 * first use. `totals()` first waits until the watch has seen the bucket's last revision at call time,
 * so it reflects every write that completed before the call.
 */
export class KvBooks {
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #contribute: (key: string, value: unknown) => Books;
  readonly #log: Logger;
  readonly #observe: ((key: string, value: unknown) => void) | undefined;
  readonly #byKey = new Map<string, Books>();
  #totals: Books = {};
  #revision = 0;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #starting: Promise<void> | undefined;
  /** Bumped by reset(): a watch of an older generation no longer touches the books. */
  #generation = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];

  /**
   * `observe`, when given, is told of every record the watch sees: its value, or undefined when it was deleted
   * (or is unreadable), so a caller can keep its own index of the bucket without a second watch.
   */
  constructor(kv: KV, bucket: string, contribute: (key: string, value: unknown) => Books, log: Logger, observe?: (key: string, value: unknown) => void) {
    this.#kv = kv;
    this.#bucket = bucket;
    this.#contribute = contribute;
    this.#log = log;
    this.#observe = observe;
  }

  async totals(timeoutMs = 10_000): Promise<Books> {
    for (let generation = -1; generation !== this.#generation; ) {
      generation = this.#generation;
      this.#starting ??= this.#start();
      await this.#starting;
    }
    const { last_seq: last, messages } = (await this.#kv.status()).streamInfo.state;
    // An empty bucket (purged) has nothing to wait for, whatever its last sequence.
    if (this.#revision < last && messages > 0) {
      const caughtUp = new Promise<void>((resolve) => this.#waiters.push({ revision: last, resolve }));
      const ac = new AbortController();
      const timeout = sleepFor(timeoutMs, undefined, { signal: ac.signal, ref: false }).then(() => {
        throw new Error(`the books of bucket ${this.#bucket} did not catch up with revision ${last} within ${timeoutMs} ms`);
      });
      try {
        await Promise.race([caughtUp, timeout]);
      } finally {
        ac.abort();
      }
    }
    return { ...this.#totals };
  }

  stop(): void {
    this.#watch?.stop();
  }

  /** Forgets everything; the next totals() reads the bucket again (after it was purged and refilled). */
  reset(): void {
    this.#generation++;
    this.#watch?.stop();
    this.#forget();
  }

  #forget(): void {
    this.#watch = undefined;
    this.#starting = undefined;
    this.#byKey.clear();
    this.#totals = {};
    this.#revision = 0;
  }

  #apply(e: KvWatchEntry): void {
    const before = this.#byKey.get(e.key) ?? {};
    let after: Books = {};
    let value: unknown;
    if (e.operation === 'PUT') {
      try {
        value = e.json();
        after = this.#contribute(e.key, value);
      } catch (err) {
        value = undefined;
        this.#log.error({ err, bucket: this.#bucket, key: e.key }, 'unreadable record left out of the books');
      }
    }
    this.#observe?.(e.key, value);
    for (const [k, v] of Object.entries(before)) this.#totals[k] = (this.#totals[k] ?? 0) - v;
    for (const [k, v] of Object.entries(after)) this.#totals[k] = (this.#totals[k] ?? 0) + v;
    if (Object.keys(after).length > 0) this.#byKey.set(e.key, after);
    else this.#byKey.delete(e.key);
    this.#revision = Math.max(this.#revision, e.revision);
    this.#waiters = this.#waiters.filter((w) => (w.revision <= this.#revision ? (w.resolve(), false) : true));
  }

  async #start(): Promise<void> {
    const generation = this.#generation;
    const watch = await this.#kv.watch();
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    this.#watch = watch;
    void (async () => {
      try {
        for await (const e of watch) if (generation === this.#generation) this.#apply(e);
      } catch (err) {
        this.#log.warn({ err }, 'books watch failed; it restarts on the next query');
      }
      // Ended (stopped or failed): forget everything, the next totals() rebuilds from the bucket.
      if (generation === this.#generation) this.#forget();
    })();
  }
}
