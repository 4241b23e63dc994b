/**
 * Bounded storage: the limits of every stream and bucket, as shares of one JetStream store budget
 * (JETSTREAM_STORE_MIB: the space the platform may use on each nats-server, at most its `max_file_store`).
 *
 * How the shares keep the guarantees:
 * - ORDERS (the event store, the source of truth) is never trimmed: when it is full it refuses new
 *   writes (discard new), and orders refuses new orders before that (503 store_full) while it keeps a
 *   reserve for the end events of the orders it has accepted.
 * - Every other store that grows with each saga and must not lose a record (the read model, the run
 *   records, the participants' ledgers, notifications' record) gets a share that holds more sagas than
 *   ORDERS holds orders (their bytes per saga, measured by the bench, times a margin): ORDERS fills
 *   first, so order traffic is refused before any of them is full. They refuse writes when full too.
 * - What is superseded or consumed at once is trimmed (discard old): progress events keep the latest
 *   per run; work queues delete on ack.
 * The sum of the shares is below 1 (0.94, and 9 MiB fixed), so every stream fits its reservation in `max_file_store`
 * (the server reserves each stream's max_bytes) and the volume never fills before JetStream refuses a write.
 */
import { Buckets, Streams } from './messaging.ts';

export type DiscardPolicyName = 'old' | 'new';

export interface StoreLimit {
  /** Share of the store budget this stream or bucket may hold (max_bytes = share × budget, at least MIN_STORE_BYTES). */
  readonly share: number;
  /** A fixed max_bytes instead of a share, for what does not grow with the sagas (definitions, faults). */
  readonly bytes?: number;
  /** What JetStream does when max_bytes is reached: `new` refuses the write, `old` drops the oldest messages. */
  readonly discard: DiscardPolicyName;
  /** Messages older than this are removed; 0 or absent: kept (buckets: their TTL is their owner's setting). */
  readonly maxAgeMs?: number;
  /** Messages kept per subject; absent: no per-subject limit (buckets: their history). */
  readonly maxMsgsPerSubject?: number;
}

const HOUR_MS = 60 * 60 * 1000;
/** No stream or bucket gets less than this, whatever the budget (a definition or a fault is a few KiB). */
export const MIN_STORE_BYTES = 256 * 1024;
/** The default store budget: the cluster's `max_file_store` (cdk8s NATS_DEFAULTS.storage.maxFileStoreMiB). */
export const DEFAULT_STORE_MIB = 1536;

type StreamKey = keyof typeof Streams;
type BucketName = (typeof Buckets)[keyof typeof Buckets];

/** Limits of the platform streams, by Streams key. */
export const StreamLimits: Readonly<Record<StreamKey, StoreLimit>> = {
  // Work queue: a command is deleted once its participant acks it; only a backlog is stored. When the backlog
  // fills its share the engine's publish is refused and retried from its outbox (back-pressure, nothing dropped).
  // A command older than a day is dropped: the engine re-sends a step's command on every attempt (each attempt
  // has a timeout of seconds) and gives a compensation up after hours, so no run still waits on it.
  commands: { share: 0.03, discard: 'new', maxAgeMs: 24 * HOUR_MS },
  // Work queue of the participants' replies, deleted once the engine acks them; same argument: a lost reply is a
  // step that timed out, whose retry returns the participant's stored result.
  replies: { share: 0.03, discard: 'new', maxAgeMs: 24 * HOUR_MS },
  // Each event carries the whole run view, so the latest per subject supersedes the others: one message per run
  // on saga.events.<origin>.<runId> (the operator only reconciles on it) and one on saga.ended.<origin>.<runId>
  // (the end, which orders and inventory consume within moments). Discard old: when the share is full the oldest
  // runs' last events go first, long after their ends were consumed (a consumer stopped for longer than the share
  // holds at the current rate would miss ends: consumer_pending and ConsumerLagGrowing show that).
  sagaEvents: { share: 0.12, discard: 'old', maxAgeMs: 24 * HOUR_MS, maxMsgsPerSubject: 1 },
  // Public domain events (order confirmed/cancelled/failed), one per order, consumed at once by notifications;
  // trimmed like the progress events.
  domainEvents: { share: 0.04, discard: 'old', maxAgeMs: 24 * HOUR_MS },
  // The order event store: never trimmed (no max age, discard new). Orders stops accepting orders at its
  // high-water mark and keeps the rest for the end events of the orders already accepted.
  orders: { share: 0.1, discard: 'new' },
  // Dead letters wait a week for a person (make dlq). Discard new: when full, a poison message is not dropped but
  // stays in its own stream and the consumer keeps trying to dead-letter it; DeadLettersGrowing fires on the first
  // dead letter, long before the share (thousands of dead letters) is full.
  deadLetters: { share: 0.02, discard: 'new', maxAgeMs: 7 * 24 * HOUR_MS },
};

/**
 * Limits of the platform buckets, by bucket name. KV buckets always refuse writes when full (discard new): a
 * dropped oldest entry could be a key's only value. History and TTL stay their owners' settings.
 */
export const BucketLimits: Readonly<Record<BucketName, StoreLimit>> = {
  // Run records (TTL RUNS_TTL_MS, a week): ~1.6× the bytes of an order per saga, 2× here for compensated runs.
  [Buckets.sagaRuns]: { share: 0.22, discard: 'new' },
  // Definitions and faults do not grow with the sagas: a fixed size (a definition is a few KiB, a fault 100 B).
  [Buckets.sagaDefinitions]: { share: 0, bytes: 8 * 1024 * 1024, discard: 'new' },
  [Buckets.faults]: { share: 0, bytes: 1024 * 1024, discard: 'new' },
  // Idempotency keys, 24 h TTL; when full, a POST with a new key is answered 503 (the gateway's store refused it).
  [Buckets.idempotency]: { share: 0.05, discard: 'new' },
  // The read model, one entry per order, rebuilt from ORDERS: ~0.45× an order's bytes, times a margin.
  [Buckets.orderView]: { share: 0.07, discard: 'new' },
  // The participants' ledgers stay the permanent idempotency records (a late duplicate command must find its
  // result): never trimmed, sized above ORDERS (per saga inventory ~0.6×, payments and shipping ~0.3× an order's
  // bytes, twice that when the step is compensated).
  [Buckets.inventory]: { share: 0.1, discard: 'new' },
  [Buckets.payments]: { share: 0.06, discard: 'new' },
  [Buckets.shipping]: { share: 0.06, discard: 'new' },
  // Which orders were notified (notifications' idempotency record), ~0.3× an order.
  [Buckets.notifications]: { share: 0.04, discard: 'new' },
};

/** max_bytes of a limit under a store budget of `budgetMiB`. */
export function maxBytesOf(limit: StoreLimit, budgetMiB: number): number {
  return limit.bytes ?? Math.max(MIN_STORE_BYTES, Math.floor(limit.share * budgetMiB * 1024 * 1024));
}

/** The limit of a bucket by name; undefined for a bucket that is not the platform's (tests). */
export function bucketLimit(bucket: string): StoreLimit | undefined {
  return (BucketLimits as Readonly<Record<string, StoreLimit>>)[bucket];
}

/**
 * The bytes orders keeps free in ORDERS for the end events of accepted orders: new orders are refused once
 * less than this is left (5 % of the stream, at least 64 KiB, at most half of it).
 */
export function ordersReserveBytes(maxBytes: number): number {
  return Math.min(maxBytes / 2, Math.max(0.05 * maxBytes, 64 * 1024));
}

/** The error code of a write refused for lack of space (orders' and the gateway's 503): not transient, not retried. */
export const STORE_FULL = 'store_full';
/** Retry-After of a store_full answer, in seconds: room comes back only when someone acts (or records age out). */
export const STORE_FULL_RETRY_AFTER_S = 60;
