import type { Response } from 'express';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Type } from '@sinclair/typebox';
import { Buckets, DomainEvents, Product, Subjects, validator } from '@sagamesh/contracts';
import { bootService, connectNats, openBucket, type Started } from '@sagamesh/runtime';
import { FaultStore } from '@sagamesh/participant';
import { ApiKeys } from './auth.ts';
import { Breakers } from './breakers.ts';
import type { GatewayConfig } from './config.ts';
import { startRunFeed } from './explorer/feed.ts';
import { RunIndex } from './explorer/run-index.ts';
import { IdempotencyStore } from './idempotency.ts';
import { ProductCache } from './products.ts';
import { mountRoutes } from './routes.ts';
import { EngineProgress, OrdersClient, Queries } from './upstreams.ts';

export { GatewayConfigSchema, type GatewayConfig } from './config.ts';

const SERVICE = 'gateway';
const productList = validator(Type.Array(Product), 'product list');

/** Changed runs waiting for one slow live-list client, at most, before it gets a snapshot instead. */
const STREAM_MAX_PENDING = 1000;

/**
 * Starts the gateway (the runtime's bootService); `stop()` ends the live-list streams, stops taking requests, lets
 * those in flight finish, then drains NATS.
 */
export async function start(config: GatewayConfig): Promise<Started> {
  // Open for as long as the browser stays: ended first on stop, or closing the HTTP server would wait for them.
  const streams = new Set<Response>();
  const started = await bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, jsm }) => {
    const apiKeys = ApiKeys.fromConfig(config);
    log.info({ apiKeys: apiKeys.counts(), ordersUrl: config.ORDERS_URL }, 'api keys loaded');
    if (config.DEV_MODE) log.warn('DEV_MODE: the well-known dev API key is accepted, as an admin key');

    const breakers = new Breakers(config, metrics, log);
    shutdown.onShutdown(() => breakers.shutdown(), 'breakers');
    const queries = new Queries(nc, config.QUERY_TIMEOUT_MS, breakers);
    // Fields are copied one by one: whatever else inventory adds stays out of the public contract.
    const loadProducts = async () => (await queries.products(productList)).map(({ sku, name, price, available }) => ({ sku, name, price, available }));
    const products = new ProductCache(loadProducts, config.PRODUCTS_CACHE_TTL_MS);

    let connected = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') connected = false;
        if (s.type === 'reconnect') {
          connected = true;
          products.invalidate(); // stock events may have been missed meanwhile
        }
      }
    })();
    const stockChanged = nc.subscribe(Subjects.domainEvent(DomainEvents.stockChanged.aggregate, DomainEvents.stockChanged.type), {
      callback: () => products.invalidate(),
    });
    shutdown.onShutdown(() => stockChanged.unsubscribe(), 'stock subscription');

    // Requests wait on these calls: a timeout of their own, shorter than the client's patience.
    const js = jetstream(nc, { timeout: config.JETSTREAM_TIMEOUT_MS });
    const kv = await openBucket(js, Buckets.idempotency, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });
    const faults = config.FAULT_INJECTION ? await FaultStore.open(js, { log, replicas: config.JETSTREAM_REPLICAS }) : undefined;
    if (faults) shutdown.onShutdown(() => faults.close(), 'faults');

    const orders = new OrdersClient(config.ORDERS_URL, config.ORDERS_TIMEOUT_MS, breakers);
    shutdown.onShutdown(() => orders.close(), 'orders client');

    const index = new RunIndex(config.EXPLORER_RUNS);
    const feed = startRunFeed({ nc, js, jsm, index, log, idleMs: config.EXPLORER_IDLE_MS });
    shutdown.onShutdown(() => feed.stop(), 'saga explorer feed');
    let replay = { js, jsm };
    if (config.DLQ_NATS_USER) {
      const dlq = await connectNats({ servers: config.NATS_URL, name: `${SERVICE}-dlq`, log, user: config.DLQ_NATS_USER, pass: config.DLQ_NATS_PASSWORD });
      shutdown.onShutdown(() => dlq.drain().catch(() => dlq.close()), 'dead-letter replay connection');
      replay = { js: jetstream(dlq, { timeout: config.JETSTREAM_TIMEOUT_MS }), jsm: await jetstreamManager(dlq, { timeout: config.JETSTREAM_TIMEOUT_MS }) };
    }

    return {
      ready: () => connected,
      routes: (app) =>
        mountRoutes(app, {
          log,
          metrics,
          apiKeys,
          limiter: new RateLimiterMemory({ keyPrefix: SERVICE, points: config.RATE_LIMIT_POINTS, duration: config.RATE_LIMIT_WINDOW_S }),
          orders,
          engine: new EngineProgress(nc, config.ENGINE_TIMEOUT_MS, breakers),
          queries,
          products,
          idempotency: new IdempotencyStore(kv, config.IDEMPOTENCY_WAIT_MS, log),
          faults,
          explorer: {
            log,
            index,
            feed,
            streamLimits: { flushMs: config.EXPLORER_FLUSH_MS, heartbeatMs: config.EXPLORER_HEARTBEAT_MS, maxPending: STREAM_MAX_PENDING },
            uiDir: config.UI_DIR,
            traceUrlTemplate: config.TRACE_URL_TEMPLATE,
            faultInjection: faults !== undefined,
            jsm,
            replay,
            streams,
          },
        }),
    };
  });
  return {
    ...started,
    stop: async () => {
      for (const res of streams) res.end();
      await started.stop();
    },
  };
}
