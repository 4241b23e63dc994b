/**
 * Inventory's state in its KV bucket, kept as one ordered log: `res.<runId>.<step>` (one record per
 * reserve key) and `stock.<sku>` (checkpoints of a sku's counters).
 *
 * Every change is ONE message: the reservation record, carrying the counters of the skus it moves as
 * they are right after it (`stock`). So a record and its stock move are stored together or not at
 * all, and a sku's current counters are those of the newest message (highest stream sequence) that
 * carries them: when a record is replaced in the bucket, its replacement moves the same skus.
 *
 * A writer decides on the counters it holds in memory and commits in the bucket's order: the first
 * message of a commit expects the stream's last sequence as this process knows it, each next one
 * the message id of the one before (Nats-Expected-Last-Msg-Id). Anything written in between (another
 * replica) breaks the chain from that point: the process reads what it missed and decides again, so
 * no decision is ever stored on stale counters and two replicas never oversell. Every change queued
 * while a commit is in flight goes into the next one (a round); a commit is one round trip however
 * many messages it has, with no atomic batch (on a file-backed stream each is an fsync'd staging
 * store, ~7 ms, serialised per stream).
 *
 * `stock.<sku>` checkpoints (written at seeding and every `checkpointEvery` changes, for every sku)
 * bound what a starting process reads: the log from the oldest checkpoint on. Records written before
 * this layout (no `stock` field, counters in `stock.<sku>`) read correctly: their moves are in the
 * checkpoints already.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { nuid } from '@nats-io/transport-node';
import { Buckets, isChainBroken, type StepResult } from '@sagamesh/contracts';
import { openBucket, type JetStreamClient, type KV, type Publisher } from '@sagamesh/runtime';
import { planRound, type Change, type Planned, type Reservation, type SkuStock } from './domain.ts';

export const stockKey = (sku: string) => `stock.${sku}`;
export const reservationKey = (actionKey: string) => `res.${actionKey}`;

export interface Versioned<T> {
  value: T;
  revision: number;
}

/** A reservation record as stored: with the counters its change left behind. */
type StoredReservation = Reservation & { stock?: Record<string, SkuStock> };

/** The stream refused a write for a reason other than a broken chain or a moved record. */
export class WriteError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WriteError';
    this.code = code;
  }
}

/** Changes per round. */
const MAX_GROUP = 64;
/** A round refused this often in a row is stuck: its changes fail, their messages are redelivered. */
const MAX_ATTEMPTS = 50;
/** Messages read per direct-get batch while catching up. */
const READ_BATCH = 1024;
/** Held reservations remembered at most (the oldest are forgotten first: they are read again if needed). */
const HELD_MAX = 50_000;

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

interface Message {
  key: string;
  data: unknown;
  /** The key's revision the write expects (0: absent; -1: any). */
  expect: number;
  /** The counters the message carries (this process holds them once it is stored). */
  stock?: ReadonlyMap<string, SkuStock>;
}

const utf8 = new TextDecoder();
const valuesOf = (m: ReadonlyMap<string, Versioned<SkuStock>>) => new Map([...m].map(([sku, v]) => [sku, v.value]));

export interface InventoryStoreOptions {
  bucket?: string;
  /** Writes go through it; default the JetStream client. */
  publisher?: Publisher;
  timeoutMs?: number;
  /** Checkpoint every sku's counters after this many changes (default 5000). */
  checkpointEvery?: number;
  /** Replicas of the bucket when this creates it (config JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
  /** The store budget its size limit is a share of (config JETSTREAM_STORE_MIB). */
  storeMiB?: number;
}

export class InventoryStore {
  readonly kv: KV;
  readonly #publisher: Publisher;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #subjectPrefix: string;
  readonly #timeoutMs: number;
  readonly #checkpointEvery: number;
  /** Every sku's counters, with the sequence of the message they come from. */
  readonly #stock = new Map<string, Versioned<SkuStock>>();
  /** The stream's last sequence as this process knows it (what it wrote and read). */
  #lastSeq = 0;
  /**
   * Reservations this process stored that still hold stock, as stored: their sale or release needs no
   * read. Any message of the key this process reads (another writer's) drops it; a stale one would
   * only be refused (its revision moved), and the caller then reads fresh.
   */
  readonly #held = new Map<string, Versioned<Reservation>>();
  #sinceCheckpoint = 0;
  #reading: Promise<void> | undefined;
  #queue: Pending[] = [];
  #draining = false;

  private constructor(js: JetStreamClient, jsm: JetStreamManager, kv: KV, bucket: string, opts: InventoryStoreOptions) {
    this.#publisher = opts.publisher ?? js;
    this.#jsm = jsm;
    this.kv = kv;
    this.#stream = `KV_${bucket}`;
    this.#subjectPrefix = `$KV.${bucket}.`;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#checkpointEvery = opts.checkpointEvery ?? 5000;
  }

  /** Opens the bucket (creating it) and reads the counters: the checkpoints, then the log after them. */
  static async open(js: JetStreamClient, jsm: JetStreamManager, opts: InventoryStoreOptions = {}): Promise<InventoryStore> {
    const bucket = opts.bucket ?? Buckets.inventory;
    const kv = await openBucket(js, bucket, { replicas: opts.replicas, storeMiB: opts.storeMiB });
    const store = new InventoryStore(js, jsm, kv, bucket, opts);
    await store.#load();
    return store;
  }

  async #load(): Promise<void> {
    let from = Infinity;
    try {
      // The last message of every stock.<sku> subject: the checkpoints.
      const checkpoints = await this.#jsm.direct.getLastMessagesFor(this.#stream, { multi_last: [this.#subjectPrefix + stockKey('>')] });
      for await (const m of checkpoints) {
        this.#see(m.subject, m.seq, m.data);
        from = Math.min(from, m.seq);
      }
    } catch (err) {
      if (!/not found/i.test((err as Error)?.message ?? '')) throw err; // none yet
    }
    this.#lastSeq = Number.isFinite(from) ? from - 1 : 0;
    await this.#catchUp();
  }

  /** Folds one stored message into the counters (only what is newer than what they hold). */
  #see(subject: string, seq: number, data: Uint8Array): void {
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    const key = subject.slice(this.#subjectPrefix.length);
    this.#held.delete(key);
    if (data.length === 0) return; // a delete or purge marker
    let stock: Record<string, SkuStock> | undefined;
    try {
      const value = JSON.parse(utf8.decode(data)) as unknown;
      stock = key.startsWith(stockKey('')) ? { [key.slice(stockKey('').length)]: value as SkuStock } : (value as StoredReservation).stock;
    } catch {
      return; // not ours to read; the record's own reader reports it
    }
    for (const [sku, value] of Object.entries(stock ?? {})) {
      if ((this.#stock.get(sku)?.revision ?? 0) < seq) this.#stock.set(sku, { value, revision: seq });
    }
  }

  /** Reads the log from what this process knows to the stream's end (one reader at a time). */
  #catchUp(): Promise<void> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<void> {
    const { last_seq: target, messages } = (await this.#jsm.streams.info(this.#stream)).state;
    while (messages > 0 && this.#lastSeq < target) {
      let got = 0;
      try {
        const batch = await this.#jsm.direct.getBatch(this.#stream, { seq: this.#lastSeq + 1, batch: READ_BATCH });
        for await (const m of batch) {
          this.#see(m.subject, m.seq, m.data);
          got++;
        }
      } catch (err) {
        // Nothing stored after lastSeq (what followed was removed): the log is read to its end.
        if (!/not found/i.test((err as Error)?.message ?? '')) throw err;
      }
      if (got < READ_BATCH) break;
    }
    // Messages up to the target that were not delivered had been removed (a newer one replaced them).
    this.#lastSeq = Math.max(this.#lastSeq, target);
  }

  /** Creates a sku's counters unless they exist; true when this call created them. */
  async seed(sku: string, stock: SkuStock): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      if (this.#stock.has(sku)) return false;
      const [result] = await this.#commit([{ key: stockKey(sku), data: stock, expect: 0, stock: new Map([[sku, stock]]) }]);
      if (result === 'ok') return true;
      if (attempt >= MAX_ATTEMPTS) throw new ContentionError([stockKey(sku)]);
      await this.#catchUp();
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
        if (this.#sinceCheckpoint >= this.#checkpointEvery) await this.#checkpoint();
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
        const { planned } = planRound(valuesOf(this.#stock), ops.map((o) => o.change));
        // A move that cannot apply may be decided on counters another replica has moved: read first.
        if (!fresh && planned.some((p) => !p.ok)) {
          fresh = true;
          await this.#catchUp();
          continue;
        }
        const kept: [Pending, Extract<Planned, { ok: true }>][] = [];
        planned.forEach((p, i) => {
          const op = ops[i]!;
          if (!p.ok) return op.reject(p.error);
          kept.push([op, p]);
        });
        if (kept.length === 0) return;
        const results = await this.#commit(
          kept.map(([op, p]): Message => {
            const data: StoredReservation = p.stock ? { ...p.record, stock: Object.fromEntries(p.stock) } : p.record;
            return { key: reservationKey(op.change.key), data, expect: p.expect, ...(p.stock ? { stock: p.stock } : {}) };
          }),
        );
        ops = [];
        const refused: [Pending, Extract<Planned, { ok: true }>][] = [];
        kept.forEach(([op, p], i) => (results[i] === 'ok' ? op.resolve({ committed: true, result: p.result }) : refused.push([op, p])));
        this.#sinceCheckpoint += kept.length - refused.length;
        if (refused.length === 0) return;
        // Refused: a change whose record moved goes back to its caller; the others are decided again on fresh counters.
        const [revisions] = await Promise.all([Promise.all(refused.map(([op]) => this.#revisionOf(op.change.key))), this.#catchUp()]);
        refused.forEach(([op, p], i) => (revisions[i] === p.expect ? ops.push(op) : op.resolve({ committed: false })));
        fresh = true;
      }
      if (ops.length > 0) {
        const err = new ContentionError(ops.map((o) => o.change.key));
        for (const op of ops) op.reject(err);
      }
    } catch (err) {
      for (const op of pending) op.reject(err); // a settled promise ignores this
    }
  }

  /** Writes every sku's counters as they are now, so that a starting process reads the log from here. */
  async #checkpoint(): Promise<void> {
    const messages = [...this.#stock].map(([sku, v]): Message => ({ key: stockKey(sku), data: v.value, expect: -1, stock: new Map([[sku, v.value]]) }));
    const results = await this.#commit(messages).catch(() => []);
    // A refused checkpoint (another writer in between) is simply taken again after the next changes.
    if (results.length > 0 && results.every((r) => r === 'ok')) this.#sinceCheckpoint = 0;
    else await this.#catchUp().catch(() => undefined);
  }

  async #revisionOf(key: string): Promise<number> {
    const e = await this.kv.get(reservationKey(key));
    return e && e.operation === 'PUT' ? e.revision : 0;
  }

  /**
   * Writes the messages as one chain after the stream's last sequence this process knows, all sent at
   * once. Per message: 'ok' (stored: the counters it carries are applied), or 'refused' (the chain
   * broke before or at it, or its record was not at the expected revision; nothing of it is stored).
   * `expect: -1` writes the key whatever its revision. Other failures throw.
   */
  async #commit(messages: readonly Message[]): Promise<('ok' | 'refused')[]> {
    const ids = messages.map(() => nuid.next());
    const acks = await Promise.allSettled(
      messages.map((m, i) =>
        this.#publisher.publish(this.#subjectPrefix + m.key, JSON.stringify(m.data), {
          msgID: ids[i]!,
          timeout: this.#timeoutMs,
          expect: {
            ...(i === 0 ? { lastSequence: this.#lastSeq } : { lastMsgID: ids[i - 1]! }),
            ...(m.expect >= 0 ? { lastSubjectSequence: m.expect } : {}),
          },
        }),
      ),
    );
    const out: ('ok' | 'refused')[] = [];
    let failure: unknown;
    acks.forEach((a, i) => {
      if (a.status === 'fulfilled') {
        const m = messages[i]!;
        for (const [sku, value] of m.stock ?? []) this.#stock.set(sku, { value, revision: a.value.seq });
        this.#hold(m, a.value.seq);
        this.#lastSeq = Math.max(this.#lastSeq, a.value.seq);
        out.push('ok');
      } else {
        if (!isChainBroken(a.reason)) failure ??= a.reason;
        out.push('refused');
      }
    });
    if (failure !== undefined) {
      // Unknown outcome (a timeout, the connection): whatever was stored is read back before anyone decides again.
      await this.#catchUp().catch(() => undefined);
      throw new WriteError(`inventory write failed: ${(failure as Error)?.message ?? String(failure)}`, (failure as { code?: number })?.code, { cause: failure });
    }
    return out;
  }

  #hold(m: Message, revision: number): void {
    this.#held.delete(m.key);
    const rec = m.data as StoredReservation;
    if (!m.key.startsWith(reservationKey('')) || rec.status !== 'reserved') return;
    const { stock: _counters, ...value } = rec;
    this.#held.set(m.key, { value, revision });
    if (this.#held.size > HELD_MAX) this.#held.delete(this.#held.keys().next().value!);
  }

  /** The skus' counters: as this process holds them, or (`fresh`) after reading what others wrote. */
  async stocks(skus: readonly string[], fresh: boolean): Promise<Map<string, Versioned<SkuStock>>> {
    if (fresh) await this.#catchUp();
    const out = new Map<string, Versioned<SkuStock>>();
    for (const sku of skus) {
      const v = this.#stock.get(sku);
      if (v) out.set(sku, v);
    }
    return out;
  }

  /** The record under a reserve key: remembered from this process's own write unless `fresh`, else read. */
  async reservation(key: string, fresh = false): Promise<Versioned<Reservation> | undefined> {
    const held = fresh ? undefined : this.#held.get(reservationKey(key));
    if (held) return held;
    const e = await this.kv.get(reservationKey(key));
    if (!e || e.operation !== 'PUT') return undefined;
    // The counters it carried are history, not part of the record a later change starts from.
    const { stock: _counters, ...value } = e.json<StoredReservation>();
    return { value, revision: e.revision };
  }
}
