import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { createLogger, ensureKv } from '@sagamesh/kit';
import { startNatsServer, type NatsServer } from '@sagamesh/kit/testing';
import type { RecordedEvent } from '../src/domain.ts';
import { addBooks, contribution, emptyBooks } from '../src/projection.ts';
import { BOOK_SHARDS, ReadModel, bookShard, enableAtomicWrites } from '../src/read-model.ts';

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
const log = createLogger('orders-test', 'silent');

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

const at = '2025-01-01T00:00:00.000Z';
const placed = (orderId: string, seq: number, total = 1000): RecordedEvent => ({
  event: { name: 'placed', data: { orderId, customerId: 'c', items: [{ sku: 'sku-1', quantity: 1, unitPrice: total }], total } },
  seq,
  at,
});
const confirmed = (orderId: string, seq: number): RecordedEvent => ({ event: { name: 'confirmed', data: { orderId } }, seq, at });

/** The connection, but the next request (an atomic batch's commit) is lost, as in a crash right before it. */
function crashingOnce(conn: NatsConnection): { nc: NatsConnection; arm(): void } {
  let armed = false;
  const proxy = new Proxy(conn, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'request') {
        return (...args: Parameters<NatsConnection['request']>) => {
          if (armed) {
            armed = false;
            return Promise.reject(new Error('simulated crash before the commit'));
          }
          return target.request(...args);
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { nc: proxy, arm: () => (armed = true) };
}

async function bucket(name: string): Promise<KV> {
  const kv = await ensureKv(js, name);
  await enableAtomicWrites(await js.jetstreamManager(), kv);
  return kv;
}

test('an order record and its count land together or not at all; redelivery counts once', async () => {
  const kv = await bucket('view-crash');
  const crashing = crashingOnce(nc);
  const model = new ReadModel(crashing.nc, kv, 'view-crash', log);
  crashing.arm();
  await assert.rejects(model.project(placed('o-1', 1)), /simulated crash/);
  assert.equal(await model.getView('o-1'), undefined);
  assert.deepEqual(await model.books(), emptyBooks());
  // Redelivery, here or in another replica.
  assert.equal((await new ReadModel(nc, kv, 'view-crash', log).project(placed('o-1', 1))).kind, 'applied');
  assert.equal((await model.project(placed('o-1', 1))).kind, 'skipped');
  assert.deepEqual((await model.books()).pending, { count: 1 });
  crashing.arm();
  await assert.rejects(model.project(confirmed('o-1', 2)), /simulated crash/);
  assert.equal((await model.getView('o-1'))?.status, 'PENDING');
  assert.deepEqual((await model.books()).pending, { count: 1 });
  assert.equal((await model.project(confirmed('o-1', 2))).kind, 'applied');
  assert.equal((await model.project(confirmed('o-1', 2))).kind, 'skipped');
  assert.deepEqual(await model.books(), { ...emptyBooks(), confirmed: { count: 1, total: 1000 } });
});

test('two replicas projecting many orders at once keep the books equal to the views', async () => {
  const kv = await bucket('view-race');
  const replicas = [new ReadModel(nc, kv, 'view-race', log), new ReadModel(nc, kv, 'view-race', log)];
  const ids = Array.from({ length: 120 }, (_, i) => `o-${i}`);
  assert.equal(new Set(ids.map(bookShard)).size, BOOK_SHARDS, 'every shard is used');
  // Every event delivered twice (once to each replica), ends racing their placed events.
  const events = ids.flatMap((id, i) => (i % 3 === 0 ? [placed(id, 2 * i + 1, i)] : [placed(id, 2 * i + 1, i), confirmed(id, 2 * i + 2)]));
  const deliver = async (model: ReadModel, rec: RecordedEvent) => {
    while ((await model.project(rec)).kind === 'wait') await new Promise((r) => setTimeout(r, 5));
  };
  await Promise.all(replicas.flatMap((m, r) => (r === 0 ? events : [...events].reverse()).map((e) => deliver(m, e))));
  let scanned = emptyBooks();
  for (const id of ids) scanned = addBooks(scanned, contribution(await replicas[0]!.getView(id)));
  assert.deepEqual(await replicas[1]!.books(), scanned);
  assert.deepEqual(scanned.pending, { count: 40 });
  assert.equal(scanned.confirmed.count, 80);
});
