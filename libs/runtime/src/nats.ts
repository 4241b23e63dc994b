import { connect, nanos, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import {
  DiscardPolicy,
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
import {
  bucketLimit, DEFAULT_STORE_MIB, DUPLICATE_WINDOW_MS, inboxPrefixOf, isJetStreamUnavailable, maxBytesOf, StreamLimits, Streams, type DiscardPolicyName,
  JetStreamErrorCodes,
} from '@sagamesh/contracts';
import type { Logger } from './logger.ts';

export interface ConnectNatsOptions {
  /** One URL or several, comma-separated. */
  servers: string;
  /** Connection name, shown by the server's monitoring. */
  name: string;
  log: Logger;
  /** Default true: keep trying when the server is not up yet (pods start in any order). */
  waitOnFirstConnect?: boolean;
  /** This process's identity on the bus (NATS_USER, NATS_PASSWORD); absent on a server without authorization. */
  user?: string;
  pass?: string;
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
    // An identity's replies come to its own inbox, which no other identity may subscribe.
    ...(opts.user ? { user: opts.user, pass: opts.pass, inboxPrefix: inboxPrefixOf(opts.user) } : {}),
  });
  opts.log.info({ server: nc.getServer(), ...(opts.user ? { user: opts.user } : {}) }, 'nats connected');
  coalesceWrites(nc);
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
  /** Bytes kept at most; absent: no limit. */
  maxBytes?: number;
  /** At maxBytes: `old` drops the oldest messages (default), `new` refuses the write. */
  discard?: DiscardPolicyName;
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
    max_bytes: spec.maxBytes ?? -1,
    discard: spec.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
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
const PLACEMENT_REFUSED = new Set<number>([JetStreamErrorCodes.replicasNotSupported, JetStreamErrorCodes.noSuitablePeers, JetStreamErrorCodes.insufficientResources]);

/** The server's refusal, naming what failed and, when it could not place the replicas, what to change. */
function refused(what: string, replicas: number, err: unknown): StreamConfigError {
  const placement = replicas > 1 && err instanceof JetStreamApiError && PLACEMENT_REFUSED.has(err.code);
  const hint = placement ? ` (${replicas} replicas need a JetStream cluster of at least ${replicas} servers: lower JETSTREAM_REPLICAS)` : '';
  return new StreamConfigError(`could not ${what}${hint}: ${(err as Error).message}`, { cause: err });
}

/** Whether the server refused a request for lack of permission (a NATS user without the grant: see natsPermissions). */
export function isPermissionDenied(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) if (e instanceof PermissionViolationError) return true;
  return false;
}

/**
 * Under authorization only the admin identity creates or updates streams and buckets (it provisions them before the
 * services start): a missing one is an error that says so; one that differs from this build's spec is used as it is,
 * with a warning (the admin's next provisioning updates it).
 */
function notProvisioned(what: string, err: unknown): NotProvisionedError {
  return new NotProvisionedError(`${what} does not exist and this NATS user may not create it: the admin identity provisions streams and buckets (provisionPlatform; in the cluster the nats-provision Job)`, { cause: err });
}

/** A stream or bucket a service needs is not there yet and only the admin may create it: waited for, like a forming JetStream. */
export class NotProvisionedError extends StreamConfigError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NotProvisionedError';
  }
}
function keptAsProvisioned(log: Logger | undefined, what: string, err: unknown): void {
  log?.warn({ err }, `${what} differs from this build's spec and this NATS user may not update it: used as provisioned (the admin's provisioning updates it)`);
}

/**
 * Adds each stream, or updates it when its settings differ (subjects, max age, de-dup window,
 * per-subject limit, max bytes, discard policy, replicas); a stream already as specified is left alone.
 * A lower max bytes keeps every stored message of a stream that discards new (it refuses writes until it is
 * below its limit again) and drops the oldest of one that discards old. A retention or storage
 * change cannot be applied in place: that throws, naming the stream. Without the permission to create or update
 * (a service identity), a missing stream throws and a differing one is kept, with a warning to `log`.
 */
export async function ensureStreams(jsm: JetStreamManager, streams: readonly StreamSpec[], log?: Logger): Promise<void> {
  for (const spec of streams) {
    const want = desiredConfig(spec);
    let have: StreamConfig;
    try {
      have = (await jsm.streams.info(spec.name)).config;
    } catch (err) {
      if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await jsm.streams.add(want).catch((e: unknown) => {
        throw isPermissionDenied(e) ? notProvisioned(`stream ${spec.name}`, e) : refused(`create stream ${spec.name}`, want.num_replicas, e);
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
      have.max_bytes !== want.max_bytes ||
      have.discard !== want.discard ||
      have.num_replicas !== want.num_replicas;
    if (!changed) continue;
    try {
      await jsm.streams.update(spec.name, {
        ...have,
        subjects: want.subjects,
        max_age: want.max_age,
        duplicate_window: want.duplicate_window,
        max_msgs_per_subject: want.max_msgs_per_subject,
        max_bytes: want.max_bytes,
        discard: want.discard,
        num_replicas: want.num_replicas,
      });
    } catch (err) {
      if (isPermissionDenied(err)) keptAsProvisioned(log, `stream ${spec.name}`, err);
      else throw refused(`update stream ${spec.name}`, want.num_replicas, err);
    }
  }
}

const WORK_QUEUES: ReadonlySet<keyof typeof Streams> = new Set(['commands', 'replies']);

/**
 * sagamesh's streams under a store budget of `storeMiB` (JETSTREAM_STORE_MIB): work queues for commands and replies,
 * the latest progress event per run, domain events, the order event store kept, dead letters; each with the limits
 * of the contracts' StreamLimits (why each keeps the guarantees is written there).
 */
export function platformStreams(storeMiB = DEFAULT_STORE_MIB): StreamSpec[] {
  return (Object.keys(Streams) as (keyof typeof Streams)[]).map((key) => {
    const limit = StreamLimits[key];
    return {
      ...Streams[key],
      retention: WORK_QUEUES.has(key) ? 'workqueue' : 'limits',
      maxBytes: maxBytesOf(limit, storeMiB),
      discard: limit.discard,
      ...(limit.maxAgeMs ? { maxAgeMs: limit.maxAgeMs } : {}),
      ...(limit.maxMsgsPerSubject ? { maxMsgsPerSubject: limit.maxMsgsPerSubject } : {}),
    };
  });
}

/** Declares every platform stream with `replicas` copies and the limits of a `storeMiB` budget (idempotent; any service may call it at start-up). */
export function declarePlatformStreams(jsm: JetStreamManager, replicas = 1, log?: Logger, storeMiB = DEFAULT_STORE_MIB): Promise<void> {
  return ensureStreams(jsm, platformStreams(storeMiB).map((s) => ({ ...s, replicas })), log);
}

export interface KvSpec {
  /** Values kept per key (1 = latest only). Default 1. */
  history?: number;
  /** Entries expire this long after their last write; 0 or absent = never. */
  ttlMs?: number;
  /** Copies kept by the JetStream cluster (config JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
  /** Where a bucket kept as provisioned (a service identity may not update it) is reported. */
  log?: Logger;
  /**
   * Bytes kept at most (the bucket refuses writes past it). Default: a platform bucket's share of `storeMiB`
   * (contracts' BucketLimits); no limit for any other bucket.
   */
  maxBytes?: number;
  /** The store budget (JETSTREAM_STORE_MIB) a platform bucket's share is taken of; default DEFAULT_STORE_MIB. */
  storeMiB?: number;
}

/** How long set-up requests (buckets, consumers) wait for a JetStream that is unavailable for now: NATS's own startup probe budget. */
export const JETSTREAM_FORMING_BUDGET_MS = 300_000;

/**
 * Sends a set-up request again, with backoff, while JetStream answers only that it is unavailable for now (a cluster
 * forming or electing a leader: see isJetStreamUnavailable) or what it needs is not provisioned yet (the cluster's
 * provisioning Job runs beside the services); any other error, or the budget spent, throws.
 */
export function whileJetStreamForms<T>(
  step: () => Promise<T>,
  opts: { /** Logs each wait, naming `what`. */ log?: Logger; what?: string; budgetMs?: number } = {},
): Promise<T> {
  return pRetry(step, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 250,
    maxTimeout: 5000,
    maxRetryTime: opts.budgetMs ?? JETSTREAM_FORMING_BUDGET_MS,
    shouldRetry: ({ error }) => isJetStreamUnavailable(error) || error instanceof NotProvisionedError,
    onFailedAttempt: ({ error, attemptNumber, retryDelay }) => {
      const what = opts.what ?? 'JetStream set-up';
      if (isJetStreamUnavailable(error)) opts.log?.warn({ err: error, attempt: attemptNumber, retryInMs: retryDelay }, `${what}: JetStream not ready yet, retrying`);
      else if (error instanceof NotProvisionedError) opts.log?.warn({ attempt: attemptNumber, retryInMs: retryDelay, reason: error.message }, `${what}: waiting for the admin to provision it`);
    },
  });
}

/**
 * Opens a KV bucket, creating it, or updating its history/TTL/replicas/max bytes when they differ from `opts`; waits
 * while JetStream is unavailable for now. A bucket refuses writes when full (KV discards new): a lower limit keeps
 * every entry.
 */
export function ensureKv(js: JetStreamClient, bucket: string, opts: KvSpec = {}): Promise<KV> {
  return whileJetStreamForms(() => openKv(js, bucket, opts), { ...(opts.log ? { log: opts.log } : {}), what: `open bucket ${bucket}` });
}

async function openKv(js: JetStreamClient, bucket: string, opts: KvSpec): Promise<KV> {
  const history = opts.history ?? 1;
  const ttlMs = opts.ttlMs ?? 0;
  const replicas = opts.replicas ?? 1;
  const limit = bucketLimit(bucket);
  const maxBytes = opts.maxBytes ?? (limit ? maxBytesOf(limit, opts.storeMiB ?? DEFAULT_STORE_MIB) : -1);
  // Direct gets may be answered by any replica, and a follower can lag: with R>1 a read right after another process's
  // write (an order CONFIRMED, its run read back as Running) would be stale. Leader reads keep read-after-write.
  const allowDirect = replicas === 1;
  const kv = await new Kvm(js).create(bucket, { history, ttl: ttlMs, replicas, allow_direct: allowDirect, max_bytes: maxBytes }).catch((err: unknown) => {
    throw isPermissionDenied(err) ? notProvisioned(`bucket ${bucket}`, err) : refused(`create bucket ${bucket}`, replicas, err);
  });
  // Right after the create, in a JetStream cluster still forming, the stream can answer "not found" for a moment.
  const status = await pRetry(() => kv.status(), {
    retries: 10,
    minTimeout: 200,
    maxTimeout: 2000,
    shouldRetry: ({ error }) => error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound,
  });
  const had = status.streamInfo.config;
  if (status.history !== history || status.ttl !== ttlMs || status.replicas !== replicas || (had.allow_direct ?? false) !== allowDirect || (had.max_bytes ?? -1) !== maxBytes) {
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
        max_bytes: maxBytes,
      })
      .catch((err: unknown) => {
        if (isPermissionDenied(err)) keptAsProvisioned(opts.log, `bucket ${bucket}`, err);
        else throw refused(`update bucket ${bucket}`, replicas, err);
      });
  }
  return kv;
}

/** The parts of nats-core's ProtocolHandler (3.x) that coalesceWrites replaces and uses. */
interface ProtocolInternals {
  outbound: { size(): number; fill(buf: Uint8Array, ...payloads: unknown[]): void };
  pendingLimit: number;
  flushPending(): void;
  sendCommand(cmd: string | Uint8Array, ...payloads: unknown[]): void;
}

/**
 * One socket write per event-loop turn instead of one per microtask checkpoint. nats.js queues a flush of its
 * outbound buffer as a microtask when the buffer was empty; a consumer handling a batch of messages reaches a
 * checkpoint after each, so a handler's publishes, acks and KV writes went out in many small writes (socket writes
 * were the largest item in the orchestrator's and orders' profiles: 10–13 % of their busy time), and the server read
 * them in as many reads. Here the flush waits for the turn's check phase (setImmediate): what the whole turn sent
 * goes out together, before the loop polls again, so nothing waits for later input. A full buffer (pendingLimit)
 * still goes out at once, a subscription at the checkpoint as before (with what waits), and flush()/close()/drain()
 * flush as before. Bench, three alternating pairs: CPU per saga −3/−13/−8 %, sagas/s +3/+11/+9 %, low-load latency
 * the same or lower (README "Benchmark").
 * It replaces a method of nats-core's internals: the check below makes a nats.js whose internals moved fail here,
 * at connect, rather than lose messages (a test covers it: libs/runtime/test/nats-writes.nats.test.ts).
 */
export function coalesceWrites(nc: NatsConnection): void {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolInternals> }).protocol;
  if (!protocol || typeof protocol.sendCommand !== 'function' || typeof protocol.flushPending !== 'function' || typeof protocol.outbound?.fill !== 'function' || typeof protocol.pendingLimit !== 'number') {
    throw new Error('coalesceWrites: this nats.js has no ProtocolHandler.sendCommand/outbound/flushPending as 3.x does; remove coalesceWrites or adapt it to the new internals');
  }
  const p = protocol as ProtocolInternals;
  const encoder = new TextEncoder();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    p.flushPending();
  };
  p.sendCommand = (cmd, ...payloads) => {
    p.outbound.fill(typeof cmd === 'string' ? encoder.encode(cmd) : cmd, ...payloads);
    if (p.outbound.size() >= p.pendingLimit) p.flushPending();
    // A (un)subscription keeps nats.js's timing: a service that subscribed and said it is ready must be reachable.
    else if (typeof cmd === 'string' && (cmd.startsWith('SUB ') || cmd.startsWith('UNSUB '))) queueMicrotask(() => p.flushPending());
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}
