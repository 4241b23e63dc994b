/**
 * Crashes on purpose, with the whole platform as real processes: a participant that dies after its
 * state change and before its reply (crash-after-commit), and kill -9 of the engine and of a
 * participant in the middle of a burst, and of the nats-server itself (the supervisor restarts it on the same store).
 * Every saga still ends, and nothing is lost or doubled.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { booksAtRest, GatewayClient, statusMismatches } from '../../scripts/lib/client.ts';
import type { OrderView } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/testing';

let platform: Platform;
let api: GatewayClient;
const all: string[] = [];

before(async () => {
  platform = await startPlatform({ ports: 'free' });
  api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
});
after(async () => {
  await platform?.stop();
});

const booksBalance = (views: OrderView[]) => booksAtRest(api, views);

test('crash-after-commit in shipping: the restarted service replies with its stored result, one shipment per order', async () => {
  await api.putFault({ target: 'shipping.create', failureRate: 0, latencyMs: 0, crashAfterCommit: true });
  const startsBefore = platform.starts.shipping ?? 0;
  const ids: string[] = [];
  const views: OrderView[] = [];
  // One at a time: each order crashes shipping once, and its retry must find the stored result.
  for (let i = 0; i < 3; i++) {
    const id = await api.placeOrder({ customerId: 'crash', items: [{ sku: 'sku-2', quantity: 1 }] });
    ids.push(id);
    views.push(...(await api.waitForOrders([id], 90_000)).values());
  }
  all.push(...ids);
  await api.clearFaults();
  assert.ok((platform.starts.shipping ?? 0) > startsBefore, 'shipping crashed and was restarted');
  assert.deepEqual(views.map((v) => v.status), ['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
  const audit = await api.audit();
  assert.equal(audit.shipping.created - audit.shipping.cancelled, audit.orders.confirmed.count, 'no shipment doubled or lost');
});

test('kill -9 of the engine and of payments mid-burst: every saga ends and the books balance', async () => {
  const ids = await Promise.all(
    Array.from({ length: 150 }, (_, i) => api.placeOrder({ customerId: `k-${i}`, items: [{ sku: i % 2 ? 'sku-1' : 'sku-4', quantity: 1 }] })),
  );
  all.push(...ids);
  platform.kill('orchestrator');
  await new Promise((r) => setTimeout(r, 300));
  platform.kill('payments');
  await platform.waitReady(60_000);
  const views = [...(await api.waitForOrders(all, 180_000)).values()];
  assert.deepEqual(statusMismatches(views), []);
  assert.equal(views.filter((v) => v.status === 'FAILED').length, 0);
  assert.deepEqual(await booksBalance(views), []);
});

test('kill -9 of the nats-server mid-burst: the supervisor restarts it on the same store, every saga ends, the books balance', async () => {
  const startsBefore = platform.starts['nats-server'] ?? 0;
  const ids = await Promise.all(
    Array.from({ length: 100 }, (_, i) => api.placeOrder({ customerId: `n-${i}`, items: [{ sku: i % 2 ? 'sku-1' : 'sku-4', quantity: 1 }] })),
  );
  all.push(...ids);
  platform.kill('nats-server');
  await waitFor(() => (platform.starts['nats-server'] ?? 0) === startsBefore + 1, { what: 'the supervisor to start the nats-server again', timeoutMs: 10_000 });
  await platform.waitReady(60_000);
  const views = [...(await api.waitForOrders(all, 180_000)).values()];
  assert.deepEqual(statusMismatches(views), []);
  assert.equal(views.filter((v) => v.status === 'FAILED').length, 0);
  assert.deepEqual(await booksBalance(views), []);
});
