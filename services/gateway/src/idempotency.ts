import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KV } from '@nats-io/kv';
import { backoffDelayMs, canonicalJson, isWrongLastSequence } from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/runtime';

/** The first answer to a key, replayed verbatim. */
export interface StoredResponse {
  status: number;
  body: unknown;
  location?: string;
}

/** One idempotency key's record in the KV bucket. */
export interface IdempotencyRecord {
  state: 'pending' | 'done';
  bodyHash: string;
  orderId: string;
  /** When the owning request began (epoch ms): a pending record older than the wait is abandoned. */
  startedAt: number;
  response?: StoredResponse;
}

export type Decision =
  | { kind: 'mismatch' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'wait'; untilMs: number }
  | { kind: 'takeover' };

/**
 * What a request does with an existing record (pure). A pending record whose owner is past its time
 * (crashed, or stuck on a slow upstream) is taken over: the order id is derived from the key, so a
 * second attempt reaches the very same order and cannot create another.
 */
export function decide(record: IdempotencyRecord | undefined, bodyHash: string, nowMs: number, staleAfterMs: number): Decision {
  if (!record) return { kind: 'takeover' };
  if (record.bodyHash !== bodyHash) return { kind: 'mismatch' };
  if (record.state === 'done' && record.response) return { kind: 'replay', response: record.response };
  const untilMs = record.startedAt + staleAfterMs;
  return nowMs < untilMs ? { kind: 'wait', untilMs } : { kind: 'takeover' };
}

/** The order id of (API key scope, idempotency key): the same on every replica and retry, shaped like orders' own ids. */
export function orderIdFor(scope: string, idempotencyKey: string): string {
  return `ord-${createHash('sha256').update(`sagamesh.order\0${scope}\0${idempotencyKey}`).digest('base64url').slice(0, 22)}`;
}

/** sha256 of the request body in canonical JSON: the same order sent with other spacing or key order matches. */
export function bodyHashOf(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** The KV key: scoped per API key (its hash), so two clients' keys never collide. */
export const kvKeyOf = (scope: string, idempotencyKey: string) => `${scope}.${idempotencyKey}`;

/** How a duplicate polls for the answer of the request in flight: 20 ms, doubling up to 200 ms. */
const POLL = { initialMs: 20, maxMs: 200 };

export type Begin = { kind: 'owner'; revision: number } | { kind: 'replay'; response: StoredResponse } | { kind: 'mismatch' };

/** Idempotency keys in the `gateway-idempotency` KV bucket (its TTL expires them). */
export class IdempotencyStore {
  readonly #kv: KV;
  readonly #staleAfterMs: number;
  readonly #log: Logger;

  constructor(kv: KV, staleAfterMs: number, log: Logger) {
    this.#kv = kv;
    this.#staleAfterMs = staleAfterMs;
    this.#log = log;
  }

  /**
   * Claims the key for this request (kv.create: of concurrent requests exactly one wins), or answers from
   * the record already there; a duplicate of a request still in flight waits for its answer.
   */
  async begin(key: string, bodyHash: string, orderId: string): Promise<Begin> {
    const pending: IdempotencyRecord = { state: 'pending', bodyHash, orderId, startedAt: Date.now() };
    let waits = 0;
    for (;;) {
      try {
        return { kind: 'owner', revision: await this.#kv.create(key, JSON.stringify(pending)) };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      const entry = await this.#kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue; // expired or abandoned meanwhile: claim it again
      const decision = decide(parseRecord(entry.string()), bodyHash, Date.now(), this.#staleAfterMs);
      switch (decision.kind) {
        case 'mismatch':
        case 'replay':
          return decision;
        case 'takeover':
          this.#log.warn({ orderId }, 'idempotency: taking over a pending request past its time');
          return { kind: 'owner', revision: entry.revision };
        case 'wait':
          // Polled rather than watched: duplicates in flight are rare, and the first answer comes within ms.
          await sleep(Math.min(backoffDelayMs(POLL, ++waits), Math.max(1, decision.untilMs - Date.now())));
      }
    }
  }

  /** Records the answer. Losing the compare-and-set means another attempt recorded the same order first. */
  async complete(key: string, revision: number, record: Omit<IdempotencyRecord, 'state'> & { response: StoredResponse }): Promise<void> {
    try {
      await this.#kv.update(key, JSON.stringify({ ...record, state: 'done' } satisfies IdempotencyRecord), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return;
      // The client still gets its answer; a retry finds the record pending, takes over and reaches the same order.
      this.#log.warn({ err, orderId: record.orderId }, 'idempotency: could not record the response');
    }
  }

  /** Forgets a claim whose request got no final answer (upstream down), so that a retry starts afresh. */
  async abandon(key: string, revision: number): Promise<void> {
    try {
      await this.#kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (!isWrongLastSequence(err)) this.#log.warn({ err }, 'idempotency: could not release a key');
    }
  }
}

/** An unreadable record is treated as absent (taken over): the derived order id keeps that safe. */
function parseRecord(text: string): IdempotencyRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<IdempotencyRecord>;
    if ((r.state === 'pending' || r.state === 'done') && typeof r.bodyHash === 'string' && typeof r.orderId === 'string' && typeof r.startedAt === 'number') {
      return r as IdempotencyRecord;
    }
  } catch {
    // fall through
  }
  return undefined;
}
