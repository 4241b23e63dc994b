/**
 * The orders service: the event-sourced order aggregate (stream ORDERS), its read model (KV
 * orders-view) with the outbox relay that starts sagas and publishes domain events, the saga-end
 * listener, the internal HTTP API and the audit query.
 */
import { Buckets, Consumers, SagaEndSubjects, Streams, Subjects } from '@sagamesh/contracts';
import { bootService, EngineClient, ensureKv, runConsumer, type Started } from '@sagamesh/kit';
import { serveAudit } from './audit.ts';
import type { OrdersConfig } from './config.ts';
import { OrderEventStore, SERVICE } from './event-store.ts';
import { projectorHandler, sagaEventsHandler } from './handlers.ts';
import { ReadModel } from './read-model.ts';
import { rebuildReadModel } from './rebuild.ts';
import { orderRoutes } from './routes.ts';
import { SagaStarter } from './saga.ts';

export type { OrdersConfig } from './config.ts';
export { OrdersConfigSchema } from './config.ts';

/**
 * Both consumers outlast the platform's default MaxDeliver: a message they give up on is an order
 * whose saga never starts or never ends. With the kit's backoff (0.5 s doubling to 30 s) 20 deliveries
 * ride out about seven minutes of engine or JetStream trouble; poison messages still dead-letter at once.
 */
const CONSUMER_MAX_DELIVER = 20;

export interface OrdersService extends Started {
  /** Drops the read model and replays the order stream into it (also `POST /orders/rebuild`). */
  rebuild(): ReturnType<typeof rebuildReadModel>;
}

export function start(config: OrdersConfig): Promise<OrdersService> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    const kv = await ensureKv(js, Buckets.orderView, { replicas: config.JETSTREAM_REPLICAS });

    const store = new OrderEventStore(publisher, jsm, { recentOrders: config.RECENT_ORDERS });
    const readModel = new ReadModel(kv, Buckets.orderView, log, { recentOrders: config.RECENT_ORDERS, publisher });
    shutdown.onShutdown(() => readModel.stop(), 'books');
    const starter = new SagaStarter(new EngineClient(nc, { timeoutMs: config.ENGINE_TIMEOUT_MS, mux: publisher }), log);
    // Ask early so the first order does not wait for it; an engine that is not up yet is asked again later.
    starter.revision().catch((err: unknown) => log.warn({ err }, 'saga engine did not answer define yet'));
    const rebuild = () => rebuildReadModel({ js, jsm, readModel, log });

    const common = { js, jsm, service: SERVICE, log, metrics } as const;
    const projector = runConsumer({
      ...common,
      stream: Streams.orders.name,
      consumer: { durable: Consumers.ordersProjector, filterSubjects: [Subjects.allOrderStream], maxDeliver: CONSUMER_MAX_DELIVER },
      concurrency: config.PROJECTOR_CONCURRENCY,
      handler: projectorHandler({ js: publisher, readModel, starter, log }),
    });
    shutdown.onShutdown(() => projector.stop(), 'orders-projector');
    const sagaEvents = runConsumer({
      ...common,
      stream: Streams.sagaEvents.name,
      consumer: { durable: Consumers.ordersSagaEvents, filterSubjects: [SagaEndSubjects.endedOf('order')], maxDeliver: CONSUMER_MAX_DELIVER },
      concurrency: config.SAGA_EVENTS_CONCURRENCY,
      handler: sagaEventsHandler({ store, log }),
    });
    shutdown.onShutdown(() => sagaEvents.stop(), 'orders-saga-events');

    const audit = serveAudit(nc, readModel, log);
    shutdown.onShutdown(() => audit.drain(), 'audit');

    return {
      ready: () => projector.ready() && sagaEvents.ready(),
      routes: orderRoutes({ store, readModel, starter, rebuild }),
      rebuild,
    };
  });
}
