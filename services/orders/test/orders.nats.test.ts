import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import {
  Buckets, Consumers, isWrongLastSequence, QuerySubjects, Streams, Subjects, definitionRevision, orderFulfillmentDefinition,
  type OrderView,
  type StoredOrderView,
} from '@sagamesh/contracts';
import { buildHeaders, loadConfig } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { OrderEventStore, OrderRejectedError } from '../src/event-store.ts';
import { start, OrdersConfigSchema, type OrdersService } from '../src/index.ts';
import { contribution, emptyBooks } from '../src/projection.ts';
import { addBooks, FakeEngine, http, readAll } from './helpers.ts';

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let kv: KV;
let engine: FakeEngine;
let orders: OrdersService;
let port: number;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  engine = new FakeEngine(nc);
  engine.up();
  orders = await start(loadConfig(OrdersConfigSchema, { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }));
  port = orders.port;
  kv = await new Kvm(js).open(Buckets.orderView);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'orders ready' });
});

after(async () => {
  await orders?.stop();
  await nc?.close();
  await server?.stop();
});

const place = (orderId: string, items = [{ sku: 'sku-1', quantity: 2 }], customerId = 'c-1') =>
  http(port, 'POST', '/orders', { orderId, customerId, items });
const view = async (orderId: string): Promise<StoredOrderView | undefined> => {
  const r = await http(port, 'GET', `/orders/${orderId}`);
  return r.status === 200 ? r.body : undefined;
};
const statusOf = (orderId: string, status: string) => async () => (await kv.get(orderId))?.json<{ view: OrderView }>().view.status === status;
const domainEvents = async (orderId: string) =>
  (await readAll(js, Streams.domainEvents.name, 'events.order.>')).filter((m) => m.headers?.get('ce-correlationid') === orderId).map((m) => m.subject);

test('bad input gets a 4xx with a reason', async () => {
  const bad = await http(port, 'POST', '/orders', { customerId: 'c-1', items: [] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid_request');
  assert.match(bad.body.error.message, /items/);
  const notJson = await http(port, 'POST', '/orders', '{"customerId":');
  assert.equal(notJson.status, 400);
  const unknown = await place('ord-unknown-sku', [{ sku: 'sku-nope', quantity: 1 }]);
  assert.equal(unknown.status, 422);
  assert.equal(unknown.body.error.code, 'unknown_sku');
  assert.match(unknown.body.error.message, /sku-nope/);
  assert.equal((await http(port, 'GET', '/orders/no-such-order')).status, 404);
  assert.equal((await http(port, 'GET', '/orders/bad.id')).status, 404);
});

test('place → the projector starts the saga → succeeded moves the order to CONFIRMED, once', async () => {
  const r = await place('ord-ok', [{ sku: 'sku-1', quantity: 2 }, { sku: 'sku-3', quantity: 1 }]);
  assert.equal(r.status, 202);
  assert.deepEqual(r.body, { orderId: 'ord-ok', status: 'PENDING' });
  const pending = await view('ord-ok');
  assert.equal(pending?.status, 'PENDING');
  assert.equal(pending?.total, 2 * 8999 + 2499);

  const run = await waitFor(() => engine.runs.get('ord-ok'), { what: 'saga started' });
  assert.deepEqual(run.request.input, { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 2 }, { sku: 'sku-3', quantity: 1 }], amountCents: 2 * 8999 + 2499 });
  assert.equal(run.request.definitionKey, 'builtin.order-fulfillment');
  assert.equal(run.request.revision, definitionRevision(orderFulfillmentDefinition));
  assert.equal(run.request.origin, 'order');

  // The engine's end event arrives twice (a redelivery upstream): one end event, one domain event.
  await engine.end(js, 'ord-ok', 'succeeded');
  await engine.end(js, 'ord-ok', 'succeeded');
  await waitFor(statusOf('ord-ok', 'CONFIRMED'), { what: 'order confirmed' });
  await waitFor(async () => (await jsm.consumers.info(Streams.sagaEvents.name, Consumers.ordersSagaEvents)).num_ack_pending === 0 && (await jsm.consumers.info(Streams.sagaEvents.name, Consumers.ordersSagaEvents)).num_pending === 0, { what: 'saga events handled' });
  await waitFor(async () => (await domainEvents('ord-ok')).length > 0, { what: 'domain event' });
  const stored = await readAll(js, Streams.orders.name, Subjects.orderStream('ord-ok'));
  assert.deepEqual(stored.map((m) => m.headers?.get('ce-type')), ['sagamesh.order.placed.v1', 'sagamesh.order.confirmed.v1']);
  assert.deepEqual(await domainEvents('ord-ok'), ['events.order.confirmed']);
  assert.equal((await view('ord-ok'))?.status, 'CONFIRMED');
});

test('compensated → CANCELLED with the run error as reason; failed → FAILED', async () => {
  assert.equal((await place('ord-cancel')).status, 202);
  assert.equal((await place('ord-fail')).status, 202);
  await waitFor(() => engine.runs.has('ord-cancel') && engine.runs.has('ord-fail'), { what: 'sagas started' });
  await engine.end(js, 'ord-cancel', 'compensated', { code: 'insufficient_stock', message: 'sku-1: 0 left' });
  await engine.end(js, 'ord-fail', 'failed', { code: 'compensation_gave_up', message: 'refund kept failing' });
  await waitFor(statusOf('ord-cancel', 'CANCELLED'), { what: 'order cancelled' });
  await waitFor(statusOf('ord-fail', 'FAILED'), { what: 'order failed' });
  assert.equal((await view('ord-cancel'))?.reason, 'insufficient_stock: sku-1: 0 left');
  assert.equal((await view('ord-fail'))?.reason, 'compensation_gave_up: refund kept failing');
  await waitFor(async () => (await domainEvents('ord-cancel')).length === 1 && (await domainEvents('ord-fail')).length === 1, { what: 'domain events' });
  assert.deepEqual(await domainEvents('ord-cancel'), ['events.order.cancelled']);
  assert.deepEqual(await domainEvents('ord-fail'), ['events.order.failed']);
  // A terminal order never changes: a late, contradicting end is a no-op.
  await engine.end(js, 'ord-cancel', 'succeeded');
  await waitFor(async () => (await jsm.consumers.info(Streams.sagaEvents.name, Consumers.ordersSagaEvents)).num_pending === 0, { what: 'saga events handled' });
  const stored = await readAll(js, Streams.orders.name, Subjects.orderStream('ord-cancel'));
  assert.equal(stored.length, 2);
  assert.equal((await view('ord-cancel'))?.status, 'CANCELLED');
});

test('placing the same id again is idempotent; different content under it is refused', async () => {
  assert.equal((await place('ord-twice')).status, 202);
  assert.equal((await place('ord-twice')).status, 202);
  const other = await place('ord-twice', [{ sku: 'sku-2', quantity: 1 }]);
  assert.equal(other.status, 409);
  assert.equal(other.body.error.code, 'order_exists');
  const stored = await readAll(js, Streams.orders.name, Subjects.orderStream('ord-twice'));
  assert.equal(stored.length, 1);
  const generated = await http(port, 'POST', '/orders', { customerId: 'c-9', items: [{ sku: 'sku-4', quantity: 1 }] });
  assert.equal(generated.status, 202);
  assert.match(generated.body.orderId, /^ord-[A-Za-z0-9_-]+$/);
});

test('the owner the gateway sends is stored in the placed event and the view, through the end; an order placed without one has none', async () => {
  const owner = 'a1b2c3d4'.repeat(4);
  const items = [{ sku: 'sku-1', quantity: 1 }];
  const placeOwned = (body: Record<string, unknown>) => http(port, 'POST', '/orders', { orderId: 'ord-owned', customerId: 'c-1', items, ...body });
  assert.equal((await placeOwned({ owner })).status, 202);
  // Read straight after the append (from its events until the view is projected), then from the view.
  assert.equal((await view('ord-owned'))?.owner, owner);
  const [placed] = await readAll(js, Streams.orders.name, Subjects.orderStream('ord-owned'));
  assert.equal(placed!.json<{ owner?: string }>().owner, owner);
  // The same order again by its owner is idempotent; under another owner, or none, it is refused.
  assert.equal((await placeOwned({ owner })).status, 202);
  for (const other of [{ owner: 'e5f6'.repeat(8) }, {}]) assert.equal((await placeOwned(other)).status, 409);
  assert.equal((await placeOwned({ owner: 'not.an.id' })).status, 400);
  await waitFor(() => engine.runs.get('ord-owned'), { what: 'saga started' });
  await engine.end(js, 'ord-owned', 'succeeded');
  await waitFor(statusOf('ord-owned', 'CONFIRMED'), { what: 'order confirmed' });
  assert.equal((await kv.get('ord-owned'))!.json<{ view: { owner?: string } }>().view.owner, owner);
  assert.equal((await view('ord-owned'))?.owner, owner);

  // Placed without an owner (as before owners were recorded): readable, with no owner (the gateway shows it to admins only).
  assert.equal((await place('ord-ownerless')).status, 202);
  const ownerless = await view('ord-ownerless');
  assert.equal(ownerless?.status, 'PENDING');
  assert.ok(!('owner' in ownerless!));
});

const projectorNaks = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sagamesh_messages_handled_total{') && l.includes(`consumer="${Consumers.ordersProjector}"`) && l.includes('outcome="nak"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

test('an order placed while the engine is down still gets its saga, without spending a delivery', async () => {
  const naksBefore = await projectorNaks();
  await engine.down();
  assert.equal((await place('ord-engine-down')).status, 202);
  await waitFor(async () => (await view('ord-engine-down'))?.status === 'PENDING', { what: 'order visible' });
  // Nobody answers the start (no responders): the projector tries again in place until the engine answers, as for a
  // stream that is away, so an engine down for longer than the redeliveries last does not dead-letter the order.
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(engine.runs.has('ord-engine-down'), false);
  engine.up();
  await waitFor(() => engine.runs.get('ord-engine-down'), { what: 'saga started after the engine came back', timeoutMs: 20_000 });
  assert.equal(await projectorNaks(), naksBefore, 'a delivery spent on the outage');
});

test('concurrent appends to one order conflict and the loser decides again', async () => {
  // Counts loads; the first `barrier` loads wait until all of them have read, so concurrent deciders really race
  // (counted by arrival after the read: the load counter alone lets an early reader through before the others read).
  class CountingStore extends OrderEventStore {
    loads = 0;
    barrier = 0;
    private arrived = 0;
    private waiting: (() => void)[] = [];
    override async load(orderId: string) {
      const n = ++this.loads;
      const state = await super.load(orderId);
      if (this.barrier > 1 && n <= this.barrier) {
        if (++this.arrived === this.barrier) {
          this.arrived = 0;
          for (const release of this.waiting.splice(0)) release();
        } else await new Promise<void>((r) => this.waiting.push(r));
      }
      return state;
    }
  }
  const store = new OrderEventStore(js, jsm);
  const counting = new CountingStore(js, jsm);
  const orderId = 'ord-race';
  const items = [{ sku: 'sku-2', quantity: 1, unitPrice: 12900 }];
  // Two places of the same order at once: both assume a new order, one append loses and finds it placed.
  const placed = await Promise.all([1, 2].map(() => counting.execute(orderId, { kind: 'place', orderId, customerId: 'c-r', items, total: 12900 })));
  assert.deepEqual(placed.map((e) => e.length).sort(), [0, 1]);
  assert.equal(counting.loads, 1, 'the loser reloaded once');

  // A stale expected sequence is refused by the stream.
  await assert.rejects(store.append(orderId, [{ name: 'confirmed', data: { orderId } }], 0), (err: unknown) => isWrongLastSequence(err));

  // Three different ends at once: exactly one terminal event; the losers re-decide to a no-op.
  counting.loads = 0;
  counting.barrier = 3;
  const ends = await Promise.all([
    counting.execute(orderId, { kind: 'confirm', orderId }),
    counting.execute(orderId, { kind: 'cancel', orderId, reason: 'r1' }),
    counting.execute(orderId, { kind: 'fail', orderId, reason: 'r2' }),
  ]);
  assert.equal(ends.flat().length, 1);
  assert.ok(counting.loads > 3, `losers reloaded (${counting.loads} loads)`);
  const stored = await readAll(js, Streams.orders.name, Subjects.orderStream(orderId));
  assert.equal(stored.length, 2);

  await assert.rejects(counting.execute(orderId, { kind: 'place', orderId, customerId: 'someone-else', items, total: 12900 }), (err: unknown) => err instanceof OrderRejectedError && err.code === 'order_exists');
  await assert.rejects(store.execute('ord-never', { kind: 'confirm', orderId: 'ord-never' }), (err: unknown) => err instanceof OrderRejectedError && err.code === 'not_found');
});

/** Every order view in the read model, and the books from a scan (the test's own count, not the service's). */
async function snapshot(): Promise<{ views: Map<string, OrderView>; scanned: ReturnType<typeof emptyBooks> }> {
  const views = new Map<string, OrderView>();
  let scanned = emptyBooks();
  for await (const key of await kv.keys()) {
    if (key.startsWith('books.')) continue;
    const v = (await kv.get(key))!.json<{ view: OrderView }>().view;
    views.set(key, v);
    scanned = addBooks(scanned, contribution(v));
  }
  return { views, scanned };
}
const audit = async () => (await nc.request(QuerySubjects.books('orders'), '', { timeout: 5000 })).json<ReturnType<typeof emptyBooks>>();
const projectorIdle = () =>
  waitFor(async () => {
    const i = await jsm.consumers.info(Streams.orders.name, Consumers.ordersProjector);
    return i.num_pending === 0 && i.num_ack_pending === 0;
  }, { what: 'projector idle', timeoutMs: 20_000 });

test('audit counters match the views', async () => {
  await projectorIdle();
  const { views, scanned } = await snapshot();
  assert.ok(views.size >= 6);
  assert.deepEqual(await audit(), scanned);
  const books = await audit();
  assert.ok(books.confirmed.count >= 1 && books.cancelled.count >= 1 && books.failed.count >= 1 && books.pending.count >= 1);
});

test('a redelivered placed event has one effect: replaying the whole stream changes nothing', async () => {
  await projectorIdle();
  const before = await snapshot();
  const booksBefore = await audit();
  const createdBefore = engine.runs.size;
  const startsBefore = engine.startRequests.length;
  const eventsBefore = (await readAll(js, Streams.domainEvents.name, 'events.order.>')).length;
  // Deleting the durable makes the projector recreate it and redeliver every stored event.
  await jsm.consumers.delete(Streams.orders.name, Consumers.ordersProjector);
  await waitFor(() => engine.startRequests.length > startsBefore, { what: 'placed events redelivered', timeoutMs: 20_000 });
  await projectorIdle();
  assert.equal(engine.runs.size, createdBefore, 'no saga started twice');
  assert.deepEqual(await snapshot(), before);
  assert.deepEqual(await audit(), booksBefore);
  assert.equal((await readAll(js, Streams.domainEvents.name, 'events.order.>')).length, eventsBefore, 'no domain event published twice');
});

test('rebuild from the stream equals the live view, books included', async () => {
  await projectorIdle();
  const live = await snapshot();
  const booksLive = await audit();
  const r = await http(port, 'POST', '/orders/rebuild');
  assert.equal(r.status, 200);
  assert.equal(r.body.orders, live.views.size);
  const rebuilt = await snapshot();
  assert.deepEqual(rebuilt, live);
  assert.deepEqual(await audit(), booksLive);
  // And through the function tests call, from an empty read model.
  await jsm.streams.purge(`KV_${Buckets.orderView}`);
  assert.equal((await snapshot()).views.size, 0);
  await orders.rebuild();
  assert.deepEqual(await snapshot(), live);
  assert.deepEqual(await audit(), booksLive);
});

test('a poison message in the order stream is dead-lettered with its reason', async () => {
  const headers = buildHeaders({ type: 'sagamesh.order.placed.v1', source: 'test', data: null, correlationId: 'ord-poison' });
  await js.publish(Subjects.orderStream('ord-poison'), 'not json', { headers });
  const dead = await waitFor(async () => (await readAll(js, Streams.deadLetters.name, Subjects.deadLetter(Subjects.orderStream('ord-poison')))).at(0), { what: 'dead letter' });
  assert.match(dead.headers?.get('sagamesh-dead-letter-reason') ?? '', /bad JSON/);
});
