/**
 * The orders service: the event-sourced order aggregate (stream ORDERS), its read model (KV
 * orders-view) with the outbox relay that starts sagas and publishes domain events, the saga-end
 * listener, the reconciler of orders left PENDING, the internal HTTP API and the books query.
 */
import { Buckets, Consumers, QuerySubjects, SagaEndSubjects, Streams, Subjects } from '@sagamesh/contracts';
import { answerQueries, bootService, openBucket, runConsumer, type Started } from '@sagamesh/runtime';
import { EngineClient } from '@sagamesh/participant';
import type { OrdersConfig } from './config.ts';
import { OrderEventStore, SERVICE } from './event-store.ts';
import { projectorHandler, sagaEventsHandler } from './handlers.ts';
import { ReadModel } from './read-model.ts';
import { Reconciler } from './reconciler.ts';
import { rebuildReadModel } from './rebuild.ts';
import { orderRoutes } from './routes.ts';
import { SagaStarter } from './saga.ts';

export type { OrdersConfig } from './config.ts';
export { OrdersConfigSchema } from './config.ts';

/**
 * Both consumers outlast the platform's default MaxDeliver: a message they give up on is an order
 * whose saga never starts or never ends. With the runtime's backoff (0.5 s doubling to 30 s) 20 deliveries
 * ride out about seven minutes of engine or JetStream trouble; poison messages still dead-letter at once.
 */
const CONSUMER_MAX_DELIVER = 20;

export interface OrdersService extends Started {
  /** Drops the read model and replays the order stream into it (also `POST /orders/rebuild`). */
  rebuild(): ReturnType<typeof rebuildReadModel>;
}

export function start(config: OrdersConfig): Promise<OrdersService> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    const kv = await openBucket(js, Buckets.orderView, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });

    const store = new OrderEventStore(publisher, jsm, { recentOrders: config.RECENT_ORDERS });
    const readModel = new ReadModel(kv, Buckets.orderView, log, { recentOrders: config.RECENT_ORDERS, publisher });
    shutdown.onShutdown(() => readModel.stop(), 'books');
    const engine = new EngineClient(nc, { timeoutMs: config.ENGINE_TIMEOUT_MS, mux: publisher });
    const starter = new SagaStarter(engine, log);
    const rebuild = () => rebuildReadModel({ js, jsm, readModel, log });

    const common = { nc, js, jsm, service: SERVICE, log, metrics } as const;
    const projector = runConsumer({
      ...common,
      stream: Streams.orders.name,
      consumer: { durable: Consumers.ordersProjector, filterSubjects: [Subjects.allOrderStream], maxDeliver: CONSUMER_MAX_DELIVER },
      concurrency: config.PROJECTOR_CONCURRENCY,
      handler: projectorHandler({ js: publisher, readModel, store, starter, log }),
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
    const reconciler = new Reconciler({
      readModel, store, engine, starter, log, metrics,
      intervalMs: config.RECONCILE_INTERVAL_MS,
      pendingAfterMs: config.PENDING_AFTER_MS,
    });
    reconciler.start();
    shutdown.onShutdown(() => reconciler.stop(), 'reconciler');

    const booksQuery = answerQueries(nc, QuerySubjects.books(SERVICE), SERVICE, log, () => readModel.books());
    shutdown.onShutdown(() => booksQuery.drain(), 'books query');

    return {
      ready: () => projector.ready() && sagaEvents.ready(),
      routes: orderRoutes({ store, readModel, starter, rebuild }),
      rebuild,
    };
  });
}
