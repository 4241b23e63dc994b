/**
 * Provisioning: the admin identity creates (or updates) every platform stream and KV bucket before the services
 * start. Under NATS authorization nobody else may (see natsPermissions in @sagamesh/contracts); the services then
 * only check that what they need exists. Run by the make dev launcher and the test rigs; on a nats-server without
 * authorization the services still create what they need themselves, with the same specs.
 */
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { Buckets, DEFAULT_RUNS_TTL_MS, IDEMPOTENCY_TTL_MS } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';
import { declarePlatformStreams, ensureKv, type KvSpec, whileJetStreamForms } from './nats.ts';

/** What a platform bucket's spec adds to KvSpec's defaults (history 1, no TTL, JETSTREAM_REPLICAS copies). */
export interface PlatformBucketSpec extends Pick<KvSpec, 'ttlMs'> {
  /** Copies at most, whatever JETSTREAM_REPLICAS says. */
  maxReplicas?: number;
}

/** Every bucket of the platform with what its spec adds to KvSpec's defaults. */
export const PlatformBuckets: Readonly<Record<(typeof Buckets)[keyof typeof Buckets], PlatformBucketSpec>> = {
  [Buckets.sagaRuns]: { ttlMs: DEFAULT_RUNS_TTL_MS },
  [Buckets.sagaDefinitions]: {},
  [Buckets.faults]: {},
  [Buckets.idempotency]: { ttlMs: IDEMPOTENCY_TTL_MS },
  [Buckets.orderView]: {},
  // One copy: on nats-server v2.15.2 the store's chained writes (a pipelined publish whose expected last message id
  // names a rejected one) wedge an R>1 stream; cdk8s/test/nats.nats.test.ts watches for the fix.
  [Buckets.inventory]: { maxReplicas: 1 },
  [Buckets.payments]: {},
  [Buckets.shipping]: {},
  [Buckets.notifications]: {},
};

/**
 * Opens a bucket with its platform spec (PlatformBuckets; none for a test's own bucket) and this process's replicas,
 * store budget and, where it has one, its own TTL: the one place a bucket's spec is written.
 */
export function openBucket(js: JetStreamClient, bucket: string, opts: Pick<KvSpec, 'replicas' | 'storeMiB' | 'ttlMs' | 'log'> = {}): Promise<KV> {
  const { maxReplicas, ...spec } = (PlatformBuckets as Record<string, PlatformBucketSpec>)[bucket] ?? {};
  const own = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const replicas = Math.min(opts.replicas ?? 1, maxReplicas ?? Number.POSITIVE_INFINITY);
  return ensureKv(js, bucket, { ...spec, ...own, replicas });
}

export interface ProvisionOptions {
  /** Copies of every stream and bucket (JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
  /** The orchestrator's RUNS_TTL_MS when it is not the default. */
  runsTtlMs?: number;
  /** The store budget the limits are shares of (JETSTREAM_STORE_MIB); default DEFAULT_STORE_MIB. */
  storeMiB?: number;
  log?: Logger;
}

/** Creates or updates every platform stream and bucket, over a connection of the admin identity; waits while JetStream forms. */
export async function provisionPlatform(nc: NatsConnection, opts: ProvisionOptions = {}): Promise<void> {
  const replicas = opts.replicas ?? 1;
  await whileJetStreamForms(async () => declarePlatformStreams(await jetstreamManager(nc), replicas, opts.log, opts.storeMiB), { ...(opts.log ? { log: opts.log } : {}), what: 'provision the platform streams' });
  const js = jetstream(nc);
  for (const bucket of Object.keys(PlatformBuckets)) {
    await openBucket(js, bucket, { replicas, storeMiB: opts.storeMiB, ...(bucket === Buckets.sagaRuns ? { ttlMs: opts.runsTtlMs } : {}) });
  }
  opts.log?.info({ replicas }, 'platform streams and buckets provisioned');
}
