import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import pRetry from 'p-retry';
import { DUPLICATE_WINDOW_MS, Streams } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';

export interface ConnectNatsOptions {
  /** One URL or several, comma-separated. */
  servers: string;
  /** Connection name, shown by the server's monitoring. */
  name: string;
  log: Logger;
  /** Default true: keep trying when the server is not up yet (pods start in any order). */
  waitOnFirstConnect?: boolean;
}

/** Connects to NATS, reconnects forever and logs every connection status change. */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const servers = opts.servers.split(',').map((s) => s.trim()).filter(Boolean);
  opts.log.info({ servers }, 'connecting to nats');
  const nc = await connect({
    servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? true,
    // Async stack traces cost two Error objects per request/publish (~20 % CPU under load).
    noAsyncTraces: true,
  });
  opts.log.info({ server: nc.getServer() }, 'nats connected');
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
        case 'reconnecting':
        case 'staleConnection':
        case 'slowConsumer':
          opts.log.warn({ status: s }, `nats ${s.type}`);
          break;
        case 'error':
          opts.log.error({ status: s }, 'nats error');
          break;
        case 'reconnect':
          opts.log.info({ status: s }, 'nats reconnected');
          break;
        default:
          opts.log.debug({ status: s }, `nats ${s.type}`);
      }
    }
  })();
  return nc;
}

export interface StreamSpec {
  name: string;
  subjects: readonly string[];
  retention?: 'limits' | 'workqueue' | 'interest';
  /** 0 or absent: kept forever. */
  maxAgeMs?: number;
  /** Publish de-dup window (Nats-Msg-Id); default DUPLICATE_WINDOW_MS. */
  duplicateWindowMs?: number;
  maxMsgsPerSubject?: number;
  storage?: 'file' | 'memory';
  /** Copies kept by the JetStream cluster (config JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
}

const retentionOf = { limits: RetentionPolicy.Limits, workqueue: RetentionPolicy.Workqueue, interest: RetentionPolicy.Interest } as const;

function desiredConfig(spec: StreamSpec) {
  const maxAge = spec.maxAgeMs ?? 0;
  // The server refuses a de-dup window longer than the max age.
  const dupMs = Math.min(spec.duplicateWindowMs ?? DUPLICATE_WINDOW_MS, maxAge > 0 ? maxAge : Infinity);
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    retention: retentionOf[spec.retention ?? 'limits'],
    storage: spec.storage === 'memory' ? StorageType.Memory : StorageType.File,
    max_age: nanos(maxAge),
    duplicate_window: nanos(dupMs),
    max_msgs_per_subject: spec.maxMsgsPerSubject ?? -1,
    num_replicas: spec.replicas ?? 1,
  };
}

/** Whether two subject lists hold the same subjects, in any order. */
export function sameSet(a: readonly string[] = [], b: readonly string[] = []): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

export function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

export class StreamConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StreamConfigError';
  }
}

/** The server's answers when it cannot place the replicas: no cluster, too few servers, no room. */
const PLACEMENT_REFUSED = new Set([10074, 10005, 10023]);

/** The server's refusal, naming what failed and, when it could not place the replicas, what to change. */
function refused(what: string, replicas: number, err: unknown): StreamConfigError {
  const placement = replicas > 1 && err instanceof JetStreamApiError && PLACEMENT_REFUSED.has(err.code);
  const hint = placement ? ` (${replicas} replicas need a JetStream cluster of at least ${replicas} servers: lower JETSTREAM_REPLICAS)` : '';
  return new StreamConfigError(`could not ${what}${hint}: ${(err as Error).message}`, { cause: err });
}

/**
 * Adds each stream, or updates it when its settings differ (subjects, max age, de-dup window,
 * per-subject limit, replicas); a stream already as specified is left alone. A retention or storage
 * change cannot be applied in place: that throws, naming the stream.
 */
export async function ensureStreams(jsm: JetStreamManager, streams: readonly StreamSpec[]): Promise<void> {
  for (const spec of streams) {
    const want = desiredConfig(spec);
    let have: StreamConfig;
    try {
      have = (await jsm.streams.info(spec.name)).config;
    } catch (err) {
      if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await jsm.streams.add(want).catch((e: unknown) => {
        throw refused(`create stream ${spec.name}`, want.num_replicas, e);
      });
      continue;
    }
    if (have.retention !== want.retention || have.storage !== want.storage) {
      throw new StreamConfigError(
        `stream ${spec.name} exists with retention=${have.retention} storage=${have.storage}, wanted ` +
          `retention=${want.retention} storage=${want.storage}: JetStream cannot change these in place; delete the stream to recreate it`,
      );
    }
    const changed =
      !sameSet(have.subjects, want.subjects) ||
      have.max_age !== want.max_age ||
      have.duplicate_window !== want.duplicate_window ||
      have.max_msgs_per_subject !== want.max_msgs_per_subject ||
      have.num_replicas !== want.num_replicas;
    if (!changed) continue;
    try {
      await jsm.streams.update(spec.name, {
        ...have,
        subjects: want.subjects,
        max_age: want.max_age,
        duplicate_window: want.duplicate_window,
        max_msgs_per_subject: want.max_msgs_per_subject,
        num_replicas: want.num_replicas,
      });
    } catch (err) {
      throw refused(`update stream ${spec.name}`, want.num_replicas, err);
    }
  }
}

const HOUR_MS = 60 * 60 * 1000;

/** sagamesh's streams: work queues for commands and replies; events kept 24 h; the order event store kept. */
export const PlatformStreams: readonly StreamSpec[] = [
  { ...Streams.commands, retention: 'workqueue' },
  { ...Streams.replies, retention: 'workqueue' },
  { ...Streams.sagaEvents, retention: 'limits', maxAgeMs: 24 * HOUR_MS },
  { ...Streams.domainEvents, retention: 'limits', maxAgeMs: 24 * HOUR_MS },
  { ...Streams.orders, retention: 'limits' },
  { ...Streams.deadLetters, retention: 'limits', maxAgeMs: 7 * 24 * HOUR_MS },
];

/** Declares every platform stream with `replicas` copies (idempotent; any service may call it at start-up). */
export function declarePlatformStreams(jsm: JetStreamManager, replicas = 1): Promise<void> {
  return ensureStreams(jsm, PlatformStreams.map((s) => ({ ...s, replicas })));
}

export interface KvSpec {
  /** Values kept per key (1 = latest only). Default 1. */
  history?: number;
  /** Entries expire this long after their last write; 0 or absent = never. */
  ttlMs?: number;
  /** Copies kept by the JetStream cluster (config JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
}

/** Opens a KV bucket, creating it, or updating its history/TTL/replicas when they differ from `opts`. */
export async function ensureKv(js: JetStreamClient, bucket: string, opts: KvSpec = {}): Promise<KV> {
  const history = opts.history ?? 1;
  const ttlMs = opts.ttlMs ?? 0;
  const replicas = opts.replicas ?? 1;
  // Direct gets may be answered by any replica, and a follower can lag: with R>1 a read right after another process's
  // write (an order CONFIRMED, its run read back as Running) would be stale. Leader reads keep read-after-write.
  const allowDirect = replicas === 1;
  const kv = await new Kvm(js).create(bucket, { history, ttl: ttlMs, replicas, allow_direct: allowDirect }).catch((err: unknown) => {
    throw refused(`create bucket ${bucket}`, replicas, err);
  });
  const status = await kv.status();
  if (status.history !== history || status.ttl !== ttlMs || status.replicas !== replicas || (status.streamInfo.config.allow_direct ?? false) !== allowDirect) {
    const jsm = await js.jetstreamManager();
    const stream = status.streamInfo.config.name;
    const cfg = status.streamInfo.config;
    await jsm.streams
      .update(stream, {
        ...cfg,
        max_msgs_per_subject: history,
        max_age: nanos(ttlMs),
        duplicate_window: ttlMs > 0 ? Math.min(cfg.duplicate_window, nanos(ttlMs)) : cfg.duplicate_window,
        num_replicas: replicas,
        allow_direct: allowDirect,
      })
      .catch((err: unknown) => {
        throw refused(`update bucket ${bucket}`, replicas, err);
      });
  }
  return kv;
}

/**
 * Runs a JetStream set-up step (streams, buckets) again with backoff while JetStream cannot take it yet: in a cluster
 * that is just starting, a service may connect before the servers have elected a meta leader or before enough of them
 * are up for R3. Retrying here keeps the pod out of CrashLoopBackOff's growing delays; past `budgetMs` it gives up.
 */
export function whenJetStreamReady<T>(what: string, log: Logger, step: () => Promise<T>, budgetMs = 120_000): Promise<T> {
  return pRetry(step, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 500,
    maxTimeout: 5000,
    maxRetryTime: budgetMs,
    onFailedAttempt: ({ error, attemptNumber, retryDelay }) =>
      log.warn({ err: error, attempt: attemptNumber, retryInMs: retryDelay }, `${what}: JetStream not ready yet, retrying`),
  });
}
