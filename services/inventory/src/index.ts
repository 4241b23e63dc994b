/**
 * The inventory service: saga participant (reserve / release, idempotent by step key), choreography
 * (a succeeded run's reservation becomes a sale), product and books queries.
 */
import { CeHeaders, Consumers, QuerySubjects, SagaEndSubjects, SagaEvent, Streams, ceType, validator } from '@sagamesh/contracts';
import { answerQueries, bootService, decodeMessage, type HandlerResult, type JsMsg, runConsumer, type Started } from '@sagamesh/runtime';
import { participantOptions, type ParticipantSeams, runParticipant } from '@sagamesh/participant';
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

export function start(config: InventoryConfig, seams: ParticipantSeams = {}): Promise<Started> {
  return bootService(SERVICE, config, async (ctx) => {
    const { log, metrics, shutdown, nc, js, jsm, publisher } = ctx;
    // One replica whatever JETSTREAM_REPLICAS says: on nats-server v2.15.2, a pipelined publish whose expected last
    // message id names a rejected one wedges an R>1 stream (every later publish times out; a 3-node cluster shows it,
    // R1 does not), and the store's chained writes are exactly that. cdk8s/test/nats.nats.test.ts watches for the fix.
    const store = await InventoryStore.open(js, jsm, { publisher, replicas: 1, storeMiB: config.JETSTREAM_STORE_MIB });
    const changes = new StockChanges(js, log, config.STOCK_EVENT_INTERVAL_MS);
    shutdown.onShutdown(() => changes.stop(), 'stock-changes');
    const inventory = new Inventory(store, changes);
    const seeded = await inventory.seed();
    if (seeded.length > 0) log.info({ skus: seeded }, 'catalogue seeded');

    const products = answerQueries(nc, QuerySubjects.products, SERVICE, log, () => inventory.products());
    const booksQuery = answerQueries(nc, QuerySubjects.books(SERVICE), SERVICE, log, () => inventory.books());
    shutdown.onShutdown(() => Promise.all([products.drain(), booksQuery.drain()]), 'queries');

    const participant = await runParticipant(participantOptions(ctx, config, inventory.commands(), seams));
    shutdown.onShutdown(() => participant.stop(), 'commands');
    const sales = runConsumer({
      nc,
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
    return { ready: () => participant.ready() && sales.ready() };
  });
}
