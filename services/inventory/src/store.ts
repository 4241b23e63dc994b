/**
 * Inventory's state in its KV bucket: `stock.<sku>` (the sku's counters) and `res.<runId>.<step>` (one
 * record per reserve key). Changes are committed in rounds: every change queued while a round is in
 * flight goes into the next one, whose records and final counters are written in ONE atomic
 * JetStream batch, each message with the revision it expects. All are stored or none, so a crash
 * never leaves stock taken without its record (or the reverse), and concurrent writers (other
 * replicas) never oversell: a refused round is decided again on fresh counters. Rounds share one
 * commit (about 2 ms on nats-server 2.15, far more than a plain put) among all waiting changes.
 */
import { randomUUID } from 'node:crypto';
import { Buckets } from '@sagamesh/contracts';
import { ensureKv, headers, isWrongLastSequence, type JetStreamClient, type JetStreamManager, type KV, type NatsConnection } from '@sagamesh/kit';
import { planRound, skusOf, type Change, type Planned, type Reservation, type SkuStock } from './domain.ts';
import type { StepResult } from '@sagamesh/contracts';

export const stockKey = (sku: string) => `stock.${sku}`;
export const reservationKey = (actionKey: string) => `res.${actionKey}`;

export interface Versioned<T> {
  value: T;
  revision: number;
}

/** One KV write of a batch: `expect` is the key's current revision (0 = the key must not exist). */
export interface Write {
  key: string;
  value: unknown;
  expect: number;
}

/** A batch the server refused for a reason other than a changed key. */
export class BatchError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code: number | undefined) {
    super(message);
    this.name = 'BatchError';
    this.code = code;
  }
}

const WRONG_LAST_SEQUENCE = [10071, 10164];
/** Changes per round (an atomic batch holds at most 1000 messages: records plus counters). */
const MAX_GROUP = 64;
/** A round refused this often in a row is stuck: its changes fail, their messages are redelivered. */
const MAX_ATTEMPTS = 50;

export class ContentionError extends Error {
  constructor(keys: readonly string[]) {
    super(`gave up after ${MAX_ATTEMPTS} refused commits (keys ${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''})`);
    this.name = 'ContentionError';
  }
}

/** committed: the change is stored with this result; otherwise its record moved and the caller decides again. */
export type Applied = { committed: true; result: StepResult | undefined } | { committed: false };

interface Pending {
  change: Change;
  resolve(a: Applied): void;
  reject(err: unknown): void;
}

export const valuesOf = (m: ReadonlyMap<string, Versioned<SkuStock>>) => new Map([...m].map(([sku, v]) => [sku, v.value]));

export class InventoryStore {
  readonly kv: KV;
  readonly #nc: NatsConnection;
  readonly #subjectPrefix: string;
  /** The last revision this process wrote or read per sku: a batch expects it, and a refusal drops it. */
  readonly #stockCache = new Map<string, Versioned<SkuStock>>();
  readonly #timeoutMs: number;
  #queue: Pending[] = [];
  #draining = false;

  private constructor(nc: NatsConnection, kv: KV, bucket: string, timeoutMs: number) {
    this.#nc = nc;
    this.kv = kv;
    this.#subjectPrefix = `$KV.${bucket}.`;
    this.#timeoutMs = timeoutMs;
  }

  /** Opens the bucket (creating it) and enables atomic batches on its stream. */
  static async open(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, opts: { bucket?: string; timeoutMs?: number } = {}): Promise<InventoryStore> {
    const bucket = opts.bucket ?? Buckets.inventory;
    const kv = await ensureKv(js, bucket, { history: 1 });
    const stream = `KV_${bucket}`;
    const { config } = await jsm.streams.info(stream);
    if (!config.allow_atomic) {
      try {
        await jsm.streams.update(stream, { ...config, allow_atomic: true });
      } catch (err) {
        throw new Error(`inventory needs atomic batch publish on stream ${stream} (nats-server 2.12 or later): ${(err as Error).message}`, { cause: err });
      }
    }
    return new InventoryStore(nc, kv, bucket, opts.timeoutMs ?? 5000);
  }

  /** Creates a sku's counters unless they exist; true when this call created them. */
  async seed(sku: string, stock: SkuStock): Promise<boolean> {
    try {
      await this.kv.put(stockKey(sku), JSON.stringify(stock), { previousSeq: 0 });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /** Queues a change; it is committed with the others of its round. */
  apply(change: Change): Promise<Applied> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ change, resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        // One change per record per round: two writes expecting the same revision would always be refused.
        const round: Pending[] = [];
        const later: Pending[] = [];
        const keys = new Set<string>();
        for (const p of this.#queue) {
          if (round.length < MAX_GROUP && !keys.has(p.change.key)) {
            keys.add(p.change.key);
            round.push(p);
          } else later.push(p);
        }
        this.#queue = later;
        await this.#round(round);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #round(pending: Pending[]): Promise<void> {
    let ops = pending;
    try {
      let fresh = false;
      for (let attempt = 0; attempt < MAX_ATTEMPTS && ops.length > 0; attempt++) {
        const skus = [...new Set(ops.flatMap((o) => skusOf(o.change)))];
        const stocks = await this.stocks(skus, fresh);
        const { planned, stocks: changed } = planRound(valuesOf(stocks), ops.map((o) => o.change));
        // A refusal or an impossible move decided on cached counters is checked on fresh ones first.
        if (!fresh && planned.some((p) => !p.ok || p.refusal)) {
          fresh = true;
          continue;
        }
        const writes: Write[] = [];
        const kept: [Pending, Extract<Planned, { ok: true }>][] = [];
        planned.forEach((p, i) => {
          const op = ops[i]!;
          if (!p.ok) return op.reject(p.error);
          writes.push({ key: reservationKey(op.change.key), value: p.record, expect: p.expect });
          kept.push([op, p]);
        });
        for (const [sku, s] of changed) writes.push({ key: stockKey(sku), value: s, expect: stocks.get(sku)!.revision });
        if (writes.length === 0) return;
        if (await this.commit(writes)) {
          for (const [op, p] of kept) op.resolve({ committed: true, result: p.result });
          return;
        }
        // Refused: a change whose record moved goes back to its caller; the others retry on fresh counters.
        const revisions = await Promise.all(kept.map(([op]) => this.#revisionOf(op.change.key)));
        ops = [];
        kept.forEach(([op, p], i) => (revisions[i] === p.expect ? ops.push(op) : op.resolve({ committed: false })));
        fresh = true;
      }
      if (ops.length > 0) {
        const err = new ContentionError(ops.map((o) => o.change.key));
        for (const op of ops) op.reject(err);
      }
    } catch (err) {
      for (const op of ops) op.reject(err); // a settled promise ignores this
    }
  }

  async #revisionOf(key: string): Promise<number> {
    const e = await this.kv.get(reservationKey(key));
    return e && e.operation === 'PUT' ? e.revision : 0;
  }

  /** The skus' counters: from this process's cache unless `fresh`; a sku without counters is left out. */
  async stocks(skus: readonly string[], fresh: boolean): Promise<Map<string, Versioned<SkuStock>>> {
    const out = new Map<string, Versioned<SkuStock>>();
    await Promise.all(
      skus.map(async (sku) => {
        const cached = fresh ? undefined : this.#stockCache.get(sku);
        if (cached) {
          out.set(sku, cached);
          return;
        }
        const e = await this.kv.get(stockKey(sku));
        if (!e || e.operation !== 'PUT') return;
        const v = { value: e.json<SkuStock>(), revision: e.revision };
        this.#stockCache.set(sku, v);
        out.set(sku, v);
      }),
    );
    return out;
  }

  async reservation(key: string): Promise<Versioned<Reservation> | undefined> {
    const e = await this.kv.get(reservationKey(key));
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json<Reservation>(), revision: e.revision };
  }

  /**
   * Writes all or nothing. false = a key was not at its expected revision (cached sku counters are
   * dropped, so the caller re-reads and decides again).
   */
  async commit(writes: readonly Write[]): Promise<boolean> {
    let firstSeq: number;
    if (writes.length === 1) {
      const [w] = writes as [Write];
      try {
        firstSeq = await this.kv.put(w.key, JSON.stringify(w.value), { previousSeq: w.expect });
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        this.#forget(writes);
        return false;
      }
    } else {
      const ack = await this.#atomicBatch(writes);
      if (!ack.ok) {
        this.#forget(writes);
        return false;
      }
      // A batch is stored at consecutive sequences, in order.
      firstSeq = ack.lastSeq - writes.length + 1;
    }
    writes.forEach((w, i) => {
      if (w.key.startsWith('stock.')) this.#stockCache.set(w.key.slice('stock.'.length), { value: w.value as SkuStock, revision: firstSeq + i });
    });
    return true;
  }

  #forget(writes: readonly Write[]): void {
    for (const w of writes) if (w.key.startsWith('stock.')) this.#stockCache.delete(w.key.slice('stock.'.length));
  }

  // JetStream atomic batch publish (nats-server ≥ 2.12, stream allow_atomic), by hand: nats.js's Batch
  // makes an extra round trip for the first message and drops the server's error code on failure.
  async #atomicBatch(writes: readonly Write[]): Promise<{ ok: true; lastSeq: number } | { ok: false }> {
    const id = randomUUID();
    let reply: { seq?: number; error?: { err_code?: number; description?: string } } = {};
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      const h = headers();
      h.set('Nats-Batch-Id', id);
      h.set('Nats-Batch-Sequence', String(i + 1));
      h.set('Nats-Expected-Last-Subject-Sequence', String(w.expect));
      const subject = this.#subjectPrefix + w.key;
      const data = JSON.stringify(w.value);
      if (i < writes.length - 1) {
        this.#nc.publish(subject, data, { headers: h });
      } else {
        h.set('Nats-Batch-Commit', '1');
        const r = await this.#nc.request(subject, data, { headers: h, timeout: this.#timeoutMs });
        reply = r.json();
      }
    }
    if (!reply.error) {
      if (typeof reply.seq !== 'number') throw new BatchError(`atomic batch: unexpected reply ${JSON.stringify(reply)}`, undefined);
      return { ok: true, lastSeq: reply.seq };
    }
    if (reply.error.err_code !== undefined && WRONG_LAST_SEQUENCE.includes(reply.error.err_code)) return { ok: false };
    throw new BatchError(`atomic batch refused: ${reply.error.description ?? 'no description'}`, reply.error.err_code);
  }
}
