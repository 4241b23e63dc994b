/**
 * The read model in KV `orders-view`: one record per order (key = order id) and the audit books,
 * split over a few shard keys (`books.<n>`: '.' never occurs in an order id) so concurrent projectors
 * rarely contend.
 *
 * An event that changes the books writes the order's record and its shard in one JetStream atomic
 * batch, each write guarded by its key's revision: both land or neither does. So a crash, a
 * redelivery or a second replica can neither count an event twice nor lose its count, and the books
 * always equal the sum over the views.
 */
import { headers, nuid, type NatsConnection } from '@nats-io/transport-node';
import { PubHeaders, type JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from '@sagamesh/kit';
import type { OrderSnapshot, RecordedEvent } from './domain.ts';
import { isWrongLastSequence } from './event-store.ts';
import { addBooks, emptyBooks, isZeroBooks, planProjection, type OrderBooks, type ViewRecord } from './projection.ts';

export const BOOK_SHARDS = 16;
const MAX_CAS_ATTEMPTS = 50;
const BATCH_COMMIT_TIMEOUT_MS = 5000;

/** Compare-and-set kept losing (heavy contention, or a rebuild racing it): the caller retries the message. */
export class ReadModelConflictError extends Error {
  constructor(key: string, options?: ErrorOptions) {
    super(`read model key ${key}: compare-and-set still conflicting after ${MAX_CAS_ATTEMPTS} attempts`, options);
    this.name = 'ReadModelConflictError';
  }
}

/** The stream refused an atomic batch; `code` is JetStream's err_code (10071: a revision moved). */
export class AtomicBatchError extends Error {
  readonly code: number;
  constructor(code: number, description: string) {
    super(`atomic batch refused: ${description} (err_code ${code})`);
    this.name = 'AtomicBatchError';
    this.code = code;
  }
}

/** FNV-1a: a stable shard for an order id. */
export function bookShard(orderId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < orderId.length; i++) h = Math.imul(h ^ orderId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BOOK_SHARDS;
}
const shardKey = (shard: number) => `books.${shard}`;

const present = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';
/** Revision for a compare-and-set: 0 = the key must not exist. */
const revisionOf = (entry: KvEntry | null): number => entry?.revision ?? 0;

/** Atomic batch publishing must be on for the bucket's stream (nats-server ≥ 2.12); turns it on once. */
export async function enableAtomicWrites(jsm: JetStreamManager, kv: KV): Promise<void> {
  const { streamInfo } = await kv.status();
  if (!streamInfo.config.allow_atomic) await jsm.streams.update(streamInfo.config.name, { ...streamInfo.config, allow_atomic: true });
}

interface Write {
  key: string;
  value: unknown;
  /** The key's revision the write expects (0: absent). */
  revision: number;
}

export type ProjectOutcome = { kind: 'applied' | 'skipped'; record: ViewRecord } | { kind: 'wait' };

export class ReadModel {
  readonly #nc: NatsConnection;
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #log: Logger;
  /** Per shard: one in-process writer at a time, and the last revision seen (saves a read when nobody else wrote). */
  readonly #shards = new Map<number, { chain: Promise<unknown>; cached?: { books: OrderBooks; revision: number } }>();

  constructor(nc: NatsConnection, kv: KV, bucket: string, log: Logger) {
    this.#nc = nc;
    this.#kv = kv;
    this.#bucket = bucket;
    this.#log = log;
  }

  async getRecord(orderId: string): Promise<{ record: ViewRecord | undefined; revision: number }> {
    const entry = await this.#kv.get(orderId);
    return { record: present(entry) ? entry.json<ViewRecord>() : undefined, revision: revisionOf(entry) };
  }

  async getView(orderId: string): Promise<OrderSnapshot | undefined> {
    return (await this.getRecord(orderId)).record?.view;
  }

  /** Folds one stored event into the order's record and the books; idempotent by stream sequence. */
  project(rec: RecordedEvent): Promise<ProjectOutcome> {
    const orderId = rec.event.data.orderId;
    const shard = this.#shardState(bookShard(orderId));
    const run = () => this.#project(rec, orderId, bookShard(orderId));
    const result = shard.chain.then(run, run);
    shard.chain = result.catch(() => undefined);
    return result;
  }

  async #project(rec: RecordedEvent, orderId: string, shard: number): Promise<ProjectOutcome> {
    const state = this.#shardState(shard);
    for (let attempt = 1; ; attempt++) {
      const { record, revision } = await this.getRecord(orderId);
      const step = planProjection(record, rec);
      if (step.kind === 'wait') return step;
      if (step.kind === 'skip') return { kind: 'skipped', record: record! };
      const view: Write = { key: orderId, value: step.next, revision };
      try {
        if (isZeroBooks(step.delta)) {
          await this.#write([view]);
        } else {
          state.cached ??= await this.#readShard(shard);
          const books = addBooks(state.cached.books, step.delta);
          const revisionAfter = await this.#write([view, { key: shardKey(shard), value: books, revision: state.cached.revision }]);
          state.cached = { books, revision: revisionAfter };
        }
        return { kind: 'applied', record: step.next };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // The record or the shard moved (another replica, a redelivery, a rebuild): read both again.
        delete state.cached;
        if (attempt >= MAX_CAS_ATTEMPTS) throw new ReadModelConflictError(orderId, { cause: err });
        this.#log.debug({ orderId, attempt }, 'read model moved under us, retrying');
      }
    }
  }

  /** The orders' books: the sum of the shards (a fixed number of reads, whatever the number of orders). */
  async books(): Promise<OrderBooks> {
    const shards = await Promise.all(Array.from({ length: BOOK_SHARDS }, (_, i) => this.#readShard(i)));
    return shards.reduce((sum, s) => addBooks(sum, s.books), emptyBooks());
  }

  /** Forgets cached shards (after the bucket was purged). */
  resetCache(): void {
    for (const s of this.#shards.values()) delete s.cached;
  }

  #shardState(shard: number) {
    let s = this.#shards.get(shard);
    if (!s) this.#shards.set(shard, (s = { chain: Promise.resolve() }));
    return s;
  }

  async #readShard(shard: number): Promise<{ books: OrderBooks; revision: number }> {
    const entry = await this.#kv.get(shardKey(shard));
    return { books: present(entry) ? entry.json<OrderBooks>() : emptyBooks(), revision: revisionOf(entry) };
  }

  /**
   * Writes the keys, each only if its revision is still the expected one, all or nothing; returns the
   * last write's new revision. One write is a plain compare-and-set; more are a JetStream atomic batch
   * (the first message opens it, the last commits it and carries the stream's answer).
   */
  async #write(writes: readonly Write[]): Promise<number> {
    if (writes.length === 1) {
      const [w] = writes as [Write];
      const data = JSON.stringify(w.value);
      return w.revision === 0 ? this.#kv.create(w.key, data) : this.#kv.update(w.key, data, w.revision);
    }
    const batchId = nuid.next();
    let answer: { seq?: number; error?: { err_code?: number; description?: string } } = {};
    for (const [i, w] of writes.entries()) {
      const h = headers();
      h.set('Nats-Batch-Id', batchId);
      h.set('Nats-Batch-Sequence', String(i + 1));
      h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, String(w.revision));
      const subject = `$KV.${this.#bucket}.${w.key}`;
      const data = JSON.stringify(w.value);
      if (i < writes.length - 1) {
        this.#nc.publish(subject, data, { headers: h });
        continue;
      }
      h.set('Nats-Batch-Commit', '1');
      const reply = await this.#nc.request(subject, data, { headers: h, timeout: BATCH_COMMIT_TIMEOUT_MS });
      answer = reply.json();
    }
    if (answer.error) throw new AtomicBatchError(answer.error.err_code ?? 0, answer.error.description ?? 'no description');
    if (typeof answer.seq !== 'number') throw new AtomicBatchError(0, `unexpected answer ${JSON.stringify(answer)}`);
    return answer.seq;
  }
}
