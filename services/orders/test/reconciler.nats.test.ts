/**
 * The reconciler on a real nats-server with the fake engine: an order whose run ended but whose end event never reached
 * orders is moved by it, a running run is left alone, a run the engine does not know is started again, and the books
 * still equal the sum of the views.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, Consumers, Metrics, QuerySubjects, Streams, Subjects } from '@sagamesh/contracts';
import { EngineRequestError } from '@sagamesh/participant';
import { createLogger, createMetrics, JetStreamPublisher, loadConfig } from '@sagamesh/runtime';
import { startNats, waitFor } from '@sagamesh/testing';
import { OrderEventStore } from '../src/event-store.ts';
import { OrdersConfigSchema, start, type OrdersService } from '../src/index.ts';
import { contribution, emptyBooks, type ViewRecord } from '../src/projection.ts';
import { Reconciler } from '../src/reconciler.ts';
import { addBooks, FakeEngine, http, readAll } from './helpers.ts';

const INTERVAL_MS = 200;
const PENDING_AFTER_MS = 1000;
/** Bound for an order to be reconciled: due after PENDING_AFTER_MS, then within a round (interval + 25 % jitter), with slack. */
const WITHIN_MS = PENDING_AFTER_MS + 2 * INTERVAL_MS + 5000;

let nats: Awaited<ReturnType<typeof startNats>>;
let engine: FakeEngine;
let orders: OrdersService;
let kv: KV;

before(async () => {
  nats = await startNats();
  engine = new FakeEngine(nats.nc);
  engine.up();
  const env = { NATS_URL: nats.server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', RECONCILE_INTERVAL_MS: String(INTERVAL_MS), PENDING_AFTER_MS: String(PENDING_AFTER_MS) };
  orders = await start(loadConfig(OrdersConfigSchema, env));
  kv = await new Kvm(nats.js).open(Buckets.orderView);
});

after(async () => {
  await orders?.stop();
  await nats?.stop();
});

const place = (orderId: string) => http(orders.port, 'POST', '/orders', { orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1 }] });
const record = async (orderId: string) => (await kv.get(orderId))?.json<ViewRecord>();
const statusOf = async (orderId: string) => (await record(orderId))?.view.status;
const stored = async (orderId: string) => (await readAll(nats.js, Streams.orders.name, Subjects.orderStream(orderId))).map((m) => m.headers?.get('ce-type'));
const reconciled = async (outcome: string) => {
  const text = await (await fetch(`http://127.0.0.1:${orders.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${Metrics.ordersReconciledTotal}{outcome="${outcome}"}`));
  return Number(line?.split(' ').at(-1));
};
const gets = (orderId: string) => engine.getRequests.filter((id) => id === orderId).length;

test('a run that ended without its end event reaching orders: the order takes its end within the bound; a running run stays PENDING', async () => {
  for (const id of ['ord-lost-ok', 'ord-lost-cancel', 'ord-running']) assert.equal((await place(id)).status, 202);
  await waitFor(() => ['ord-lost-ok', 'ord-lost-cancel', 'ord-running'].every((id) => engine.runs.has(id)), { what: 'sagas started' });
  // The engine records the ends; their events never reach orders.
  engine.finish('ord-lost-ok', 'succeeded');
  engine.finish('ord-lost-cancel', 'compensated', { code: 'insufficient_stock', message: 'sku-1: 0 left' });

  await waitFor(async () => (await statusOf('ord-lost-ok')) === 'CONFIRMED' && (await statusOf('ord-lost-cancel')) === 'CANCELLED', { what: 'orders reconciled', timeoutMs: WITHIN_MS });
  assert.equal((await record('ord-lost-cancel'))?.view.reason, 'insufficient_stock: sku-1: 0 left');
  assert.deepEqual(await stored('ord-lost-ok'), ['sagamesh.order.placed.v1', 'sagamesh.order.confirmed.v1']);
  // The projector publishes the domain event of a reconciled end as of any other.
  await waitFor(async () => (await readAll(nats.js, Streams.domainEvents.name, 'events.order.>')).filter((m) => m.headers?.get('ce-correlationid') === 'ord-lost-ok').length === 1, { what: 'order.confirmed published' });
  assert.equal(await reconciled('confirmed'), 1);
  assert.equal(await reconciled('cancelled'), 1);

  // The running run was asked about in later rounds too, and left alone.
  const asked = gets('ord-running');
  await waitFor(() => gets('ord-running') >= asked + 2, { what: 'two more rounds', timeoutMs: WITHIN_MS });
  assert.equal(await statusOf('ord-running'), 'PENDING');
  assert.deepEqual(await stored('ord-running'), ['sagamesh.order.placed.v1']);

  // The end event arriving late after all (or another replica reconciling too) appends nothing more.
  await engine.end(nats.js, 'ord-lost-ok', 'succeeded');
  await waitFor(async () => (await nats.jsm.consumers.info(Streams.sagaEvents.name, Consumers.ordersSagaEvents)).num_pending === 0, { what: 'late end event handled' });
  assert.deepEqual(await stored('ord-lost-ok'), ['sagamesh.order.placed.v1', 'sagamesh.order.confirmed.v1']);
  assert.equal(await reconciled('confirmed'), 1);

  // Once it ends for real, the running one is no longer asked about.
  await engine.end(nats.js, 'ord-running', 'succeeded');
  await waitFor(async () => (await statusOf('ord-running')) === 'CONFIRMED', { what: 'running order confirmed' });
});

test('a run the engine does not know is started again; the books equal the sum of the views', async () => {
  assert.equal((await place('ord-no-run')).status, 202);
  await waitFor(() => engine.runs.has('ord-no-run'), { what: 'saga started' });
  engine.runs.delete('ord-no-run'); // as if its start never reached the engine, or its record expired
  const starts = engine.startRequests.filter((r) => r.runId === 'ord-no-run').length;
  await waitFor(() => engine.runs.has('ord-no-run'), { what: 'saga started again', timeoutMs: WITHIN_MS });
  assert.equal(engine.startRequests.filter((r) => r.runId === 'ord-no-run').length, starts + 1);
  assert.equal(await reconciled('restarted'), 1);
  assert.equal(await statusOf('ord-no-run'), 'PENDING');
  engine.finish('ord-no-run', 'succeeded');
  await waitFor(async () => (await statusOf('ord-no-run')) === 'CONFIRMED', { what: 'restarted order reconciled', timeoutMs: WITHIN_MS });

  let scanned = emptyBooks();
  for await (const key of await kv.keys()) scanned = addBooks(scanned, contribution((await record(key))?.view));
  const books = (await nats.nc.request(QuerySubjects.books('orders'), '', { timeout: 5000 })).json<ReturnType<typeof emptyBooks>>();
  assert.deepEqual(books, scanned);
  assert.deepEqual(books, { confirmed: { count: 3, total: 3 * 8999 }, cancelled: { count: 1 }, pending: { count: 0 }, failed: { count: 0 } });
});

test('an order the view still shows PENDING but that has ended in the stream is never started again', async () => {
  const log = createLogger('orders-test', 'silent');
  const store = new OrderEventStore(new JetStreamPublisher(nats.nc), nats.jsm);
  const orderId = 'ord-stale-view';
  await store.execute(orderId, { kind: 'place', orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1, unitPrice: 8999 }], total: 8999 });
  await store.execute(orderId, { kind: 'confirm', orderId });
  const startedFor: string[] = [];
  const reconciler = new Reconciler({
    readModel: { pendingSince: async () => [orderId] },
    store,
    engine: { get: async () => { throw new EngineRequestError('get', 'not_found', `no run ${orderId}`); } },
    starter: { start: async (order) => { startedFor.push(order.orderId); throw new Error('must not start'); } },
    log,
    metrics: createMetrics('orders'),
    intervalMs: INTERVAL_MS,
    pendingAfterMs: PENDING_AFTER_MS,
  });
  assert.deepEqual(await reconciler.round(), new Map());
  assert.deepEqual(startedFor, []);
});
