import { jetstream } from '@nats-io/jetstream';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Type } from '@sinclair/typebox';
import { Buckets, DomainEvents, IDEMPOTENCY_TTL_MS, Product, Subjects, validator } from '@sagamesh/contracts';
import { connectNats, createHttpServer, createLogger, createMetrics, ensureKv, FaultStore, Shutdown, whenJetStreamReady, type Started } from '@sagamesh/kit';
import { ApiKeys } from './auth.ts';
import { Breakers } from './breakers.ts';
import type { GatewayConfig } from './config.ts';
import { IdempotencyStore } from './idempotency.ts';
import { ProductCache } from './products.ts';
import { mountRoutes } from './routes.ts';
import { EngineProgress, OrdersClient, Queries } from './upstreams.ts';

export { GatewayConfigSchema, type GatewayConfig } from './config.ts';

const SERVICE = 'gateway';
const productList = validator(Type.Array(Product), 'product list');

/** Starts the gateway; `stop()` stops taking requests, lets those in flight finish, then drains NATS. */
export async function start(config: GatewayConfig): Promise<Started> {
  const log = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = createMetrics(SERVICE);
  const apiKeys = ApiKeys.fromConfig(config);
  log.info({ apiKeys: apiKeys.size, ordersUrl: config.ORDERS_URL }, 'api keys loaded');
  if (config.DEV_MODE) log.warn('DEV_MODE: the well-known dev API key is accepted');

  const shutdown = new Shutdown(log);
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: SERVICE, log });
    // Drain lets in-flight requests finish; it refuses while disconnected, and then there is nothing to drain.
    shutdown.onShutdown(() => nc.drain().catch(() => nc.close()), 'nats');

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

    const js = jetstream(nc, { timeout: config.JETSTREAM_TIMEOUT_MS });
    const kv = await whenJetStreamReady('create the idempotency bucket', log, () =>
      ensureKv(js, Buckets.idempotency, { ttlMs: IDEMPOTENCY_TTL_MS, replicas: config.JETSTREAM_REPLICAS }),
    );
    const faults = await FaultStore.open(js, { log, replicas: config.JETSTREAM_REPLICAS });
    shutdown.onShutdown(() => faults.close(), 'faults');

    const orders = new OrdersClient(config.ORDERS_URL, config.ORDERS_TIMEOUT_MS, breakers);
    shutdown.onShutdown(() => orders.close(), 'orders client');

    const http = createHttpServer({
      service: SERVICE,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => connected && !nc.isClosed(),
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
        }),
    });
    const port = await http.listen();
    // Registered last, so it runs first: no new requests, in-flight ones finish while NATS is still up.
    shutdown.onShutdown(() => http.close(), 'http');
    return { port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
