/**
 * The inventory service: saga participant (reserve / release, idempotent by step key), choreography
 * (a succeeded run's reservation becomes a sale), product and audit queries.
 */
import { CeHeaders, Consumers, QuerySubjects, SagaEndSubjects, SagaEvent, Streams, ceType, validator } from '@sagamesh/contracts';
import {
  answerQueries,
  bootService,
  decodeMessage,
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

export function start(config: InventoryConfig, seams: ParticipantSeams = {}): Promise<Started> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    // One replica whatever JETSTREAM_REPLICAS says: on nats-server v2.15.2, a pipelined publish whose expected last
    // message id names a rejected one wedges an R>1 stream (every later publish times out; a 3-node cluster shows it,
    // R1 does not), and the store's chained writes are exactly that. cdk8s/test/nats.nats.test.ts watches for the fix.
    const store = await InventoryStore.open(js, jsm, { publisher, replicas: 1 });
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
      replicas: config.JETSTREAM_REPLICAS,
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
    return { ready: () => participant.ready() && sales.ready() };
  });
}
