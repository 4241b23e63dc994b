/**
 * Acceptance: ≥ 500 concurrent orders through the gateway with 20 % random step failures; every saga
 * ends Succeeded or Compensated, no stock goes negative, charged − refunded = confirmed totals,
 * every order's status matches its saga. The whole platform runs as real processes on a real nats-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Catalogue } from '@sagamesh/contracts';
import { startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { booksAtRest, GatewayClient, statusMismatches } from '../../scripts/lib/client.ts';

const ORDERS = 500;
// Three commanded steps failing 7 % each: 1 − 0.93³ ≈ 20 % of sagas fail somewhere.
const STEP_FAILURE_RATE = 0.07;
let platform: Platform;
let api: GatewayClient;
const logs: string[] = [];

before(async () => {
  platform = await startPlatform({ ports: 'free', onLog: (s, l) => logs.push(`[${s}] ${l}`) });
  api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
});
after(async () => {
  await platform?.stop();
});

test(`${ORDERS} concurrent orders with ${Math.round(STEP_FAILURE_RATE * 100)}% failures per step keep the books right`, async (t) => {
  for (const target of ['inventory.reserve', 'payments.charge', 'shipping.create'])
    await api.putFault({ target, failureRate: STEP_FAILURE_RATE, latencyMs: 0, crashAfterCommit: false });

  const skus = Catalogue.map((c) => c.sku);
  const placed = await Promise.all(
    Array.from({ length: ORDERS }, (_, i) =>
      api.placeOrder({ customerId: `c-${i % 37}`, items: [{ sku: skus[i % skus.length]!, quantity: 1 + (i % 3) }, ...(i % 4 === 0 ? [{ sku: 'sku-3', quantity: 1 }] : [])] }),
    ),
  );
  assert.equal(new Set(placed).size, ORDERS, 'every order got its own id');

  const views = [...(await api.waitForOrders(placed, 240_000)).values()];
  await api.clearFaults();
  const byStatus = Object.groupBy(views, (o) => o.status);
  t.diagnostic(`CONFIRMED ${byStatus.CONFIRMED?.length ?? 0}, CANCELLED ${byStatus.CANCELLED?.length ?? 0}, FAILED ${byStatus.FAILED?.length ?? 0}`);
  const reasons = Object.entries(Object.groupBy(byStatus.CANCELLED ?? [], (o) => (o.reason ?? '?').replace(/[0-9a-f-]{8,}/g, '…')));
  t.diagnostic(`cancel reasons: ${reasons.map(([r, os]) => `${os?.length} × ${r}`).join('; ')}`);
  assert.deepEqual(statusMismatches(views), [], 'every order status matches its saga phase');
  assert.ok((byStatus.CANCELLED?.length ?? 0) > 0, 'some sagas compensated (faults were injected)');
  assert.ok((byStatus.CONFIRMED?.length ?? 0) > 0, 'some sagas succeeded');
  assert.equal(byStatus.FAILED?.length ?? 0, 0, 'no saga needs a person');

  assert.deepEqual(await booksAtRest(api, views), [], 'the books balance at rest');
});
