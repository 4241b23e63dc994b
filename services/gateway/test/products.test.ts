import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Product } from '@sagamesh/contracts';
import { ProductCache } from '../src/products.ts';

const list = (available: number): Product[] => [{ sku: 'sku-1', name: 'Shoes', price: 8999, available }];

function loader() {
  const calls: { resolve: (p: Product[]) => void; reject: (e: Error) => void }[] = [];
  const load = () => new Promise<Product[]>((resolve, reject) => calls.push({ resolve, reject }));
  return { calls, load };
}

test('a fresh list is served from memory until the TTL passes', async () => {
  let now = 0;
  let loads = 0;
  const cache = new ProductCache(async () => list(++loads), 1000, () => now);
  assert.deepEqual(await cache.get(), list(1));
  now = 999;
  assert.deepEqual(await cache.get(), list(1));
  now = 1000;
  assert.deepEqual(await cache.get(), list(2));
  assert.equal(loads, 2);
});

test('invalidate() makes the next get load again', async () => {
  let loads = 0;
  const cache = new ProductCache(async () => list(++loads), 60_000);
  await cache.get();
  cache.invalidate();
  assert.deepEqual(await cache.get(), list(2));
});

test('concurrent misses share one load', async () => {
  const { calls, load } = loader();
  const cache = new ProductCache(load, 60_000);
  const a = cache.get();
  const b = cache.get();
  assert.equal(calls.length, 1);
  calls[0]!.resolve(list(5));
  assert.deepEqual(await a, list(5));
  assert.deepEqual(await b, list(5));
});

test('a load that began before an invalidation answers its callers but is not cached', async () => {
  const { calls, load } = loader();
  const cache = new ProductCache(load, 60_000);
  const before = cache.get();
  cache.invalidate();
  const after = cache.get(); // must not join the stale load
  assert.equal(calls.length, 2);
  calls[0]!.resolve(list(1));
  calls[1]!.resolve(list(2));
  assert.deepEqual(await before, list(1));
  assert.deepEqual(await after, list(2));
  assert.deepEqual(await cache.get(), list(2));
  assert.equal(calls.length, 2);
});

test('a failed load is not cached', async () => {
  const { calls, load } = loader();
  const cache = new ProductCache(load, 60_000);
  const first = cache.get();
  calls[0]!.reject(new Error('inventory down'));
  await assert.rejects(first, /inventory down/);
  const second = cache.get();
  assert.equal(calls.length, 2);
  calls[1]!.resolve(list(3));
  assert.deepEqual(await second, list(3));
});
