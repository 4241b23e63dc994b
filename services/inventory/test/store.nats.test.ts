import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useNatsServer } from '@sagamesh/testing';
import { initialStock, type Change } from '../src/domain.ts';
import { InventoryStore, reservationKey, stockKey } from '../src/store.ts';

const nats = useNatsServer();

const reserve = (key: string, sku: string, quantity = 1): Change => ({ kind: 'reserve', key, origin: 'order', items: [{ sku, quantity }] });
const counters = async (store: InventoryStore, sku: string) => (await store.stocks([sku], true)).get(sku)?.value;

test('a change is one message: the record carries the counters it leaves behind', async () => {
  const store = await InventoryStore.open(nats.js, nats.jsm, { bucket: 'inv-one' });
  assert.equal(await store.seed('a', initialStock(10)), true);
  assert.equal(await store.seed('a', initialStock(99)), false, 'seeded once');
  const applied = await store.apply(reserve('r1.s', 'a', 3));
  assert.equal(applied.committed, true);
  const rec = (await store.kv.get(reservationKey('r1.s')))!.json<{ status: string; stock: Record<string, unknown> }>();
  assert.equal(rec.status, 'reserved');
  assert.deepEqual(rec.stock, { a: { initial: 10, available: 7, reserved: 3, sold: 0, soldK8s: 0 } });
  // The record as the commands read it is the reservation alone.
  assert.equal('stock' in (await store.reservation('r1.s'))!.value, false);
});

test('a restarted store reads its counters from the checkpoints and the log after them', async () => {
  const first = await InventoryStore.open(nats.js, nats.jsm, { bucket: 'inv-restart', checkpointEvery: 4 });
  await first.seed('a', initialStock(100));
  await first.seed('b', initialStock(100));
  const changes = Array.from({ length: 11 }, (_, i) => reserve(`r${i}.s`, i % 3 ? 'a' : 'b', 1 + (i % 2)));
  for (const c of changes) assert.equal((await first.apply(c)).committed, true);
  const held = await first.reservation('r4.s');
  await first.apply({ kind: 'sell', key: 'r4.s', record: held!.value, expect: held!.revision });
  const want = { a: await counters(first, 'a'), b: await counters(first, 'b') };
  assert.equal(want.a!.sold, 1 + (4 % 2));
  // Checkpoints were written along the way (every 4 changes), not only at seeding.
  assert.ok((await first.kv.get(stockKey('a')))!.revision > 2, 'a checkpoint after the seed');
  const second = await InventoryStore.open(nats.js, nats.jsm, { bucket: 'inv-restart' });
  assert.deepEqual({ a: await counters(second, 'a'), b: await counters(second, 'b') }, want);
});

test('a writer that missed another replica’s writes is refused, reads them, and decides again: no oversell', async () => {
  const a = await InventoryStore.open(nats.js, nats.jsm, { bucket: 'inv-race' });
  const b = await InventoryStore.open(nats.js, nats.jsm, { bucket: 'inv-race' });
  await a.seed('x', initialStock(3));
  // b has not read a's seed yet: its first decision is refused, it reads the log and decides on it.
  const results = await Promise.all([
    ...Array.from({ length: 4 }, (_, i) => a.apply(reserve(`a${i}.s`, 'x'))),
    ...Array.from({ length: 4 }, (_, i) => b.apply(reserve(`b${i}.s`, 'x'))),
  ]);
  assert.ok(results.every((r) => r.committed));
  const outcomes = results.map((r) => (r.committed ? r.result?.outcome : undefined));
  assert.equal(outcomes.filter((o) => o === 'succeeded').length, 3, 'exactly the stock was reserved');
  assert.deepEqual(await counters(a, 'x'), await counters(b, 'x'));
  assert.deepEqual(await counters(a, 'x'), { initial: 3, available: 0, reserved: 3, sold: 0, soldK8s: 0 });
});
