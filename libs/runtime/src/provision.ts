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

/** Every bucket of the platform with what its spec adds to KvSpec's defaults (history 1, no TTL). */
export const PlatformBuckets: Readonly<Record<(typeof Buckets)[keyof typeof Buckets], Pick<KvSpec, 'ttlMs'>>> = {
  [Buckets.sagaRuns]: { ttlMs: DEFAULT_RUNS_TTL_MS },
  [Buckets.sagaDefinitions]: {},
  [Buckets.faults]: {},
  [Buckets.idempotency]: { ttlMs: IDEMPOTENCY_TTL_MS },
  [Buckets.orderView]: {},
  [Buckets.inventory]: {},
  [Buckets.payments]: {},
  [Buckets.shipping]: {},
  [Buckets.notifications]: {},
};

/**
 * Opens a bucket with its platform spec (PlatformBuckets; none for a test's own bucket) and this process's replicas,
 * store budget and, where it has one, its own TTL: the one place a bucket's spec is written.
 */
export function openBucket(js: JetStreamClient, bucket: string, opts: Pick<KvSpec, 'replicas' | 'storeMiB' | 'ttlMs' | 'log'> = {}): Promise<KV> {
  const spec = (PlatformBuckets as Record<string, Pick<KvSpec, 'ttlMs'>>)[bucket] ?? {};
  const own = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return ensureKv(js, bucket, { ...spec, ...own });
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
