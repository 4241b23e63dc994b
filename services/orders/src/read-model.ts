/**
 * The read model in KV `orders-view`: one record per order (key = order id) holding its view and the
 * last stream sequence folded into it, written with compare-and-set on the key's revision.
 *
 * The books are not stored beside the views: they are the sum over the views, kept by a watch
 * of the bucket (the participant SDK's KvBooks), so they cannot disagree with the views whatever a crash, a
 * redelivery or a second replica does, and a projection costs one plain write (no atomic batch: on a
 * file-backed stream each one is an fsync'd staging store, ~7 ms, serialised per stream). An ended
 * order's record is settled (never written again: planProjection skips what does not change a view), so
 * the books remember only the pending orders, which are also the set the reconciler looks at.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { isWrongLastSequence } from '@sagamesh/contracts';
import { KvBooks, kvWrite, type Logger, type Publisher } from '@sagamesh/runtime';
import type { OrderSnapshot, RecordedEvent } from './domain.ts';
import { orderBooksOf, planProjection, recordBooks, type OrderBooks, type ViewRecord } from './projection.ts';

const MAX_CAS_ATTEMPTS = 50;

/** Compare-and-set kept losing (heavy contention, or a rebuild racing it): the caller retries the message. */
export class ReadModelConflictError extends Error {
  constructor(key: string, options?: ErrorOptions) {
    super(`read model key ${key}: compare-and-set still conflicting after ${MAX_CAS_ATTEMPTS} attempts`, options);
    this.name = 'ReadModelConflictError';
  }
}

const present = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';
/** Revision for a compare-and-set: 0 = the key must not exist. */
const revisionOf = (entry: KvEntry | null): number => entry?.revision ?? 0;

export type ProjectOutcome = { kind: 'applied' | 'skipped'; record: ViewRecord } | { kind: 'wait' };

interface Known {
  record: ViewRecord | undefined;
  revision: number;
}

export interface ReadModelOptions {
  /** Writes go through it (the runtime's JetStreamPublisher costs less per write); default the bucket's own. */
  publisher?: Publisher;
  /**
   * Remember the record this process last wrote for up to this many orders not ended yet (default 0),
   * so an order's next event skips the read. A stale one costs a refused compare-and-set and a read.
   */
  recentOrders?: number;
}

export class ReadModel {
  readonly #kv: KV;
  readonly #write: (key: string, value: string, previousSeq: number) => Promise<number>;
  readonly #books: KvBooks<ViewRecord>;
  readonly #recentMax: number;
  readonly #recent = new Map<string, Known>();

  constructor(kv: KV, bucket: string, log: Logger, opts: ReadModelOptions = {}) {
    this.#kv = kv;
    const publisher = opts.publisher;
    this.#write = publisher
      ? (key, value, previousSeq) => kvWrite(publisher, bucket, key, value, previousSeq)
      : (key, value, previousSeq) => (previousSeq === 0 ? kv.create(key, value) : kv.update(key, value, previousSeq));
    this.#books = new KvBooks<ViewRecord>(kv, bucket, (_key, record) => ({ books: recordBooks(record), settled: record.view.status !== 'PENDING' }), log);
    this.#recentMax = opts.recentOrders ?? 0;
  }

  async getRecord(orderId: string): Promise<Known> {
    const entry = await this.#kv.get(orderId);
    return { record: present(entry) ? entry.json<ViewRecord>() : undefined, revision: revisionOf(entry) };
  }

  async getView(orderId: string): Promise<OrderSnapshot | undefined> {
    return (await this.getRecord(orderId)).record?.view;
  }

  /** Folds one stored event into the order's record; idempotent by stream sequence. */
  async project(rec: RecordedEvent): Promise<ProjectOutcome> {
    const orderId = rec.event.data.orderId;
    // A `placed` event first assumes a new record (its create is refused if one exists): no read.
    let known = this.#recent.get(orderId) ?? (rec.event.name === 'placed' ? { record: undefined, revision: 0 } : undefined);
    for (let attempt = 1; ; attempt++) {
      const { record, revision } = known ?? (await this.getRecord(orderId));
      const step = planProjection(record, rec);
      if (step.kind === 'wait') return step;
      if (step.kind === 'skip') return { kind: 'skipped', record: record! };
      const data = JSON.stringify(step.next);
      try {
        const written = await this.#write(orderId, data, revision);
        this.#remember(orderId, { record: step.next, revision: written });
        return { kind: 'applied', record: step.next };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // The record moved (another replica, a redelivery, a rebuild): read it again.
        this.#recent.delete(orderId);
        known = undefined;
        if (attempt >= MAX_CAS_ATTEMPTS) throw new ReadModelConflictError(orderId, { cause: err });
      }
    }
  }

  #remember(orderId: string, known: Known): void {
    if (this.#recentMax === 0) return;
    this.#recent.delete(orderId);
    if (known.record?.view.status !== 'PENDING') return;
    this.#recent.set(orderId, known);
    if (this.#recent.size > this.#recentMax) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /**
   * Orders PENDING in the read model that were placed at or before `cutoffMs`, oldest first, at most `limit`:
   * as of every write completed before the call (the books remember exactly the pending orders' records).
   */
  async pendingSince(cutoffMs: number, limit: number): Promise<string[]> {
    await this.#books.totals();
    const due: [string, number][] = [];
    for (const [orderId, record] of this.#books.unsettled()) {
      const placedAt = Date.parse(record.view.createdAt);
      if (placedAt <= cutoffMs) due.push([orderId, placedAt]);
    }
    return due.sort((a, b) => a[1] - b[1]).slice(0, limit).map(([orderId]) => orderId);
  }

  /** The orders' books: the sum over every view, as of every write completed before the call. */
  async books(): Promise<OrderBooks> {
    return orderBooksOf(await this.#books.totals());
  }

  /** The records the books remember: the pending orders' (bounded by the orders in flight, not by the bucket). */
  get remembered(): number {
    return this.#books.remembered;
  }

  /** Forgets what this process remembers of the bucket (after it was purged). */
  reset(): void {
    this.#recent.clear();
    this.#books.reset();
  }

  stop(): void {
    this.#books.stop();
  }
}
