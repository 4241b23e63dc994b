import { jetstream } from '@nats-io/jetstream';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Type } from '@sinclair/typebox';
import { Buckets, DomainEvents, Product, Subjects, validator } from '@sagamesh/contracts';
import { bootService, openBucket, type Started } from '@sagamesh/runtime';
import { FaultStore } from '@sagamesh/participant';
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

/** Starts the gateway (the runtime's bootService); `stop()` stops taking requests, lets those in flight finish, then drains NATS. */
export function start(config: GatewayConfig): Promise<Started> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc }) => {
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
        }),
    };
  });
}
