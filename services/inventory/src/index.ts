/**
 * The inventory service: saga participant (reserve / release, idempotent by step key), choreography
 * (a succeeded run's reservation becomes a sale), product and audit queries.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { CeHeaders, Consumers, QuerySubjects, SagaEndSubjects, SagaEvent, Streams, ceType, validator } from '@sagamesh/contracts';
import {
  Shutdown,
  answerQueries,
  connectNats,
  createHttpServer,
  createLogger,
  createMetrics,
  declarePlatformStreams,
  decodeMessage,
  JetStreamPublisher,
  runConsumer,
  runParticipant,
  type HandlerResult,
  type JsMsg,
  type ParticipantSeams,
  type Started,
} from '@sagamesh/kit';
import type { InventoryConfig } from './config.ts';
import { Inventory, StockChanges, reservationsOf } from './inventory.ts';
import { InventoryStore } from './store.ts';

export type { InventoryConfig } from './config.ts';
export { InventoryConfigSchema } from './config.ts';

const SERVICE = 'inventory';

const SUCCEEDED = ceType('saga', 'succeeded');
const sagaEventValidator = validator(SagaEvent, 'saga event');

/** Sells the reservations of every run that succeeded; other ends are acked unread. */
export function saleHandler(inventory: Inventory) {
  return async (msg: JsMsg): Promise<HandlerResult> => {
    if (msg.headers?.get(CeHeaders.type) !== SUCCEEDED) return 'ack';
    const { data } = decodeMessage(msg, sagaEventValidator, [SUCCEEDED]);
    for (const key of reservationsOf(data.run.runId, data.run.steps)) await inventory.sell(key);
    return 'ack';
  };
}

export async function start(config: InventoryConfig, seams: ParticipantSeams = {}): Promise<Started> {
  const log = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = createMetrics(SERVICE);
  const shutdown = new Shutdown(log);
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: SERVICE, log });
    shutdown.onShutdown(() => nc.drain(), 'nats');
    const js = jetstream(nc);
    const publisher = new JetStreamPublisher(nc);
    shutdown.onShutdown(() => publisher.close(), 'publisher');
    const jsm = await jetstreamManager(nc);
    await declarePlatformStreams(jsm);
    const store = await InventoryStore.open(js, jsm, { publisher });
    const changes = new StockChanges(js, log, config.STOCK_EVENT_INTERVAL_MS);
    shutdown.onShutdown(() => changes.stop(), 'stock-changes');
    const inventory = new Inventory(store, changes, log);
    await inventory.seed();

    const products = answerQueries(nc, QuerySubjects.products, SERVICE, log, () => inventory.products());
    const audit = answerQueries(nc, QuerySubjects.audit(SERVICE), SERVICE, log, () => inventory.audit());
    shutdown.onShutdown(() => Promise.all([products.drain(), audit.drain()]), 'queries');

    const participant = await runParticipant({
      service: SERVICE,
      js,
      publisher,
      jsm,
      log,
      metrics,
      commands: inventory.commands(),
      concurrency: config.CONCURRENCY,
      ackWaitMs: config.COMMAND_ACK_WAIT_MS,
      ...seams,
    });
    shutdown.onShutdown(() => participant.stop(), 'commands');
    const sales = runConsumer({
      js,
      jsm,
      stream: Streams.sagaEvents.name,
      consumer: { durable: Consumers.inventorySagaEvents, filterSubjects: [SagaEndSubjects.allEnded] },
      concurrency: config.CONCURRENCY,
      service: SERVICE,
      log,
      metrics,
      handler: saleHandler(inventory),
    });
    shutdown.onShutdown(() => sales.stop(), 'saga-events');

    const http = createHttpServer({
      service: SERVICE,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => !nc.isClosed() && participant.ready() && sales.ready(),
    });
    const port = await http.listen();
    shutdown.onShutdown(() => http.close(), 'http');
    return { port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
