import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KV } from '@nats-io/kv';
import { createLogger, ensureKv } from '@sagamesh/runtime';
import { useNatsServer } from '@sagamesh/testing';
import type { RecordedEvent } from '../src/domain.ts';
import { contribution, emptyBooks } from '../src/projection.ts';
import { addBooks } from './helpers.ts';
import { ReadModel } from '../src/read-model.ts';

const nats = useNatsServer();
const log = createLogger('orders-test', 'silent');

const at = '2025-01-01T00:00:00.000Z';
const placed = (orderId: string, seq: number, total = 1000): RecordedEvent => ({
  event: { name: 'placed', data: { orderId, customerId: 'c', items: [{ sku: 'sku-1', quantity: 1, unitPrice: total }], total } },
  seq,
  at,
});
const confirmed = (orderId: string, seq: number): RecordedEvent => ({ event: { name: 'confirmed', data: { orderId } }, seq, at });

/** The bucket, but its next write is lost (as in a crash right before it). */
function crashingOnce(kv: KV): { kv: KV; arm(): void } {
  let armed = false;
  const proxy = new Proxy(kv, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'create' || prop === 'update' || prop === 'put') {
        return (...args: unknown[]) => {
          if (armed) {
            armed = false;
            return Promise.reject(new Error('simulated crash before the write'));
          }
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return v.bind(target);
    },
  });
  return { kv: proxy, arm: () => (armed = true) };
}

const bucket = (name: string): Promise<KV> => ensureKv(nats.js, name);

test('an order is counted in the books exactly when its record is written; redelivery counts once', async () => {
  const kv = await bucket('view-crash');
  const crashing = crashingOnce(kv);
  const model = new ReadModel(crashing.kv, 'view-crash', log, { recentOrders: 100 });
  crashing.arm();
  await assert.rejects(model.project(placed('o-1', 1)), /simulated crash/);
  assert.equal(await model.getView('o-1'), undefined);
  assert.deepEqual(await model.books(), emptyBooks());
  // Redelivery, here or in another replica.
  const other = new ReadModel(kv, 'view-crash', log);
  assert.equal((await other.project(placed('o-1', 1))).kind, 'applied');
  assert.equal((await model.project(placed('o-1', 1))).kind, 'skipped');
  assert.deepEqual((await model.books()).pending, { count: 1 });
  crashing.arm();
  await assert.rejects(model.project(confirmed('o-1', 2)), /simulated crash/);
  assert.equal((await model.getView('o-1'))?.status, 'PENDING');
  assert.deepEqual((await model.books()).pending, { count: 1 });
  assert.equal((await model.project(confirmed('o-1', 2))).kind, 'applied');
  assert.equal((await model.project(confirmed('o-1', 2))).kind, 'skipped');
  assert.equal((await other.project(confirmed('o-1', 2))).kind, 'skipped');
  assert.deepEqual(await model.books(), { ...emptyBooks(), confirmed: { count: 1, total: 1000 } });
  assert.deepEqual(await other.books(), await model.books());
  model.stop();
  other.stop();
});

test('a record remembered from an earlier write that another replica has since changed is read again', async () => {
  const kv = await bucket('view-stale');
  const a = new ReadModel(kv, 'view-stale', log, { recentOrders: 100 });
  const b = new ReadModel(kv, 'view-stale', log, { recentOrders: 100 });
  assert.equal((await a.project(placed('o-1', 1))).kind, 'applied');
  // b folds in the end first: a's remembered revision is stale now.
  assert.equal((await b.project(placed('o-1', 1))).kind, 'skipped');
  assert.equal((await b.project(confirmed('o-1', 2))).kind, 'applied');
  assert.equal((await a.project(confirmed('o-1', 2))).kind, 'skipped');
  assert.equal((await a.getView('o-1'))?.status, 'CONFIRMED');
  assert.deepEqual((await a.books()).confirmed, { count: 1, total: 1000 });
  a.stop();
  b.stop();
});

test('two replicas projecting many orders at once keep the books equal to the views', async () => {
  const kv = await bucket('view-race');
  const replicas = [new ReadModel(kv, 'view-race', log, { recentOrders: 1000 }), new ReadModel(kv, 'view-race', log, { recentOrders: 1000 })];
  const ids = Array.from({ length: 120 }, (_, i) => `o-${i}`);
  // Every event delivered twice (once to each replica), ends racing their placed events.
  const events = ids.flatMap((id, i) => (i % 3 === 0 ? [placed(id, 2 * i + 1, i)] : [placed(id, 2 * i + 1, i), confirmed(id, 2 * i + 2)]));
  const deliver = async (model: ReadModel, rec: RecordedEvent) => {
    while ((await model.project(rec)).kind === 'wait') await new Promise((r) => setTimeout(r, 5));
  };
  await Promise.all(replicas.flatMap((m, r) => (r === 0 ? events : [...events].reverse()).map((e) => deliver(m, e))));
  let scanned = emptyBooks();
  for (const id of ids) scanned = addBooks(scanned, contribution(await replicas[0]!.getView(id)));
  assert.deepEqual(await replicas[1]!.books(), scanned);
  assert.deepEqual(await replicas[0]!.books(), scanned);
  assert.deepEqual(scanned.pending, { count: 40 });
  assert.equal(scanned.confirmed.count, 80);
  for (const m of replicas) m.stop();
});

test('after a purge and a reset the books are read again from the bucket', async () => {
  const kv = await bucket('view-purge');
  const model = new ReadModel(kv, 'view-purge', log, { recentOrders: 100 });
  await model.project(placed('o-1', 1));
  await model.project(placed('o-2', 2));
  assert.deepEqual((await model.books()).pending, { count: 2 });
  await nats.jsm.streams.purge('KV_view-purge');
  model.reset();
  assert.deepEqual(await model.books(), emptyBooks(), 'an empty bucket has empty books');
  await model.project(placed('o-2', 2));
  assert.deepEqual((await model.books()).pending, { count: 1 });
  model.stop();
});

test('the books remember the pending orders only: an ended order is never written again, so it is not remembered', async () => {
  const kv = await bucket('view-bound');
  const model = new ReadModel(kv, 'view-bound', log);
  const ids = Array.from({ length: 300 }, (_, i) => `o-${i}`);
  for (const [i, id] of ids.entries()) await model.project(placed(id, 2 * i + 1, 10));
  assert.equal((await model.books()).pending.count, 300);
  assert.equal(model.remembered, 300);
  for (const [i, id] of ids.entries()) if (i >= 5) await model.project(confirmed(id, 2 * i + 2));
  // A late duplicate end, or a replayed `placed`, changes nothing and writes nothing.
  const revision = (await model.getRecord('o-10')).revision;
  assert.equal((await model.project(confirmed('o-10', 10_000))).kind, 'skipped');
  assert.equal((await model.project(placed('o-10', 10_001, 10))).kind, 'skipped');
  assert.equal((await model.getRecord('o-10')).revision, revision);
  assert.deepEqual(await model.books(), { ...emptyBooks(), pending: { count: 5 }, confirmed: { count: 295, total: 2950 } });
  assert.equal(model.remembered, 5);
  assert.deepEqual((await model.pendingSince(Date.parse(at), 10)).sort(), ['o-0', 'o-1', 'o-2', 'o-3', 'o-4']);
  model.stop();
});
