/**
 * Admin is a role, on real servers: a real nats-server, and the gateway, orders, the orchestrator and the three
 * participants in-process. Customer keys (API_KEYS) get 403 with the reason on every /admin/* route, an admin key
 * (ADMIN_API_KEYS) succeeds; a customer reads only the orders it placed — another key's order is the same 404 as
 * one that does not exist — and an admin reads every order, including one placed without an owner.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OrdersPaths } from '@sagamesh/contracts';
import { loadConfig, type Started } from '@sagamesh/runtime';
import { startNatsServer } from '@sagamesh/testing';
import * as gateway from '@sagamesh/gateway';
import * as inventory from '@sagamesh/inventory';
import * as orchestrator from '@sagamesh/orchestrator';
import * as orders from '@sagamesh/orders';
import * as payments from '@sagamesh/payments';
import * as shipping from '@sagamesh/shipping';
import { GatewayClient } from '../../scripts/lib/client.ts';

const CUSTOMER_A = 'roles-customer-a-0123456789';
const CUSTOMER_B = 'roles-customer-b-0123456789';
const ADMIN = 'roles-admin-key-0123456789';

let nats: Awaited<ReturnType<typeof startNatsServer>>;
const running: Started[] = [];
let gatewayUrl: string;
let ordersUrl: string;

before(async () => {
  nats = await startNatsServer();
  const env = (extra: Record<string, string> = {}) => ({ NATS_URL: nats.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...extra });
  const faults = { FAULT_INJECTION: 'true' };
  running.push(await orchestrator.start(loadConfig(orchestrator.OrchestratorConfigSchema, env())));
  running.push(await inventory.start(loadConfig(inventory.InventoryConfigSchema, env(faults))));
  running.push(await payments.start(loadConfig(payments.PaymentsConfigSchema, env(faults))));
  running.push(await shipping.start(loadConfig(shipping.ShippingConfigSchema, env(faults))));
  const ordersSvc = await orders.start(loadConfig(orders.OrdersConfigSchema, env()));
  running.push(ordersSvc);
  ordersUrl = `http://127.0.0.1:${ordersSvc.port}`;
  const gw = await gateway.start(
    loadConfig(gateway.GatewayConfigSchema, env({ ...faults, API_KEYS: `${CUSTOMER_A},${CUSTOMER_B}`, ADMIN_API_KEYS: ADMIN, ORDERS_URL: ordersUrl })),
  );
  running.push(gw);
  gatewayUrl = `http://127.0.0.1:${gw.port}`;
});

after(async () => {
  for (const s of running.reverse()) await s.stop().catch(() => undefined);
  await nats?.stop();
});

async function call(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gatewayUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const ADMIN_ROUTES = [
  ['GET', '/admin/audit', undefined, 200],
  ['PUT', '/admin/faults', { target: 'shipping.create', failureRate: 0, latencyMs: 1 }, 200],
  ['GET', '/admin/faults', undefined, 200],
  ['DELETE', '/admin/faults', undefined, 204],
] as const;

describe('/admin/* is for admin keys', () => {
  test('a customer key gets 403 forbidden with the reason on every /admin/* route', async () => {
    for (const key of [CUSTOMER_A, CUSTOMER_B]) {
      for (const [method, path, body] of [...ADMIN_ROUTES, ['GET', '/admin/anything', undefined, 0] as const]) {
        const r = await call(key, method, path, body);
        assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'forbidden');
        assert.match(r.body.error.message, /needs an admin key; this API key is a customer key/);
      }
    }
  });

  test('an admin key succeeds on every /admin/* route', async () => {
    for (const [method, path, body, status] of ADMIN_ROUTES) {
      const r = await call(ADMIN, method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    }
    const audit = await new GatewayClient(gatewayUrl, CUSTOMER_A, ADMIN).audit();
    assert.ok(audit.skus['sku-1'], 'the books, read from every service');
  });
});

describe('a key reads only its own orders; an admin reads all', () => {
  test("customer B gets the same 404 for customer A's order as for a missing one; A and the admin read it", async () => {
    const a = new GatewayClient(gatewayUrl, CUSTOMER_A);
    const orderId = await a.placeOrder({ customerId: 'c-a', items: [{ sku: 'sku-1', quantity: 1 }] }, 'roles-order-1');
    const views = await a.waitForOrders([orderId], 30_000);
    assert.equal(views.get(orderId)?.status, 'CONFIRMED');
    assert.equal(views.get(orderId)?.saga?.phase, 'Succeeded');

    const byB = await call(CUSTOMER_B, 'GET', `/api/orders/${orderId}`);
    const missing = 'ord-never-placed-here';
    const neverPlaced = await call(CUSTOMER_B, 'GET', `/api/orders/${missing}`);
    assert.deepEqual(byB, { status: 404, body: { error: { code: 'not_found', message: `no order ${orderId}` } } });
    assert.deepEqual(neverPlaced, { status: 404, body: { error: { code: 'not_found', message: `no order ${missing}` } } });

    const byAdmin = await call(ADMIN, 'GET', `/api/orders/${orderId}`);
    assert.equal(byAdmin.status, 200);
    assert.equal(byAdmin.body.status, 'CONFIRMED');
    // The public view names no owner, to anyone.
    assert.equal(byAdmin.body.owner, undefined);
    assert.equal((await call(CUSTOMER_A, 'GET', `/api/orders/${orderId}`)).body.owner, undefined);

    // The same Idempotency-Key under B places B's own order: a key is never a way into another's.
    const b = new GatewayClient(gatewayUrl, CUSTOMER_B);
    const bOrder = await b.placeOrder({ customerId: 'c-a', items: [{ sku: 'sku-1', quantity: 1 }] }, 'roles-order-1');
    assert.notEqual(bOrder, orderId);
    assert.equal((await call(CUSTOMER_B, 'GET', `/api/orders/${bOrder}`)).status, 200);
    assert.equal((await call(CUSTOMER_A, 'GET', `/api/orders/${bOrder}`)).status, 404);
  });

  test('an order without an owner (placed before owners were recorded) is read by admin keys only', async () => {
    const orderId = 'ord-roles-ownerless';
    const res = await fetch(`${ordersUrl}${OrdersPaths.place}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId, customerId: 'c-old', items: [{ sku: 'sku-2', quantity: 1 }] }),
    });
    assert.equal(res.status, 202);
    assert.equal((await call(ADMIN, 'GET', `/api/orders/${orderId}`)).status, 200);
    for (const key of [CUSTOMER_A, CUSTOMER_B]) assert.equal((await call(key, 'GET', `/api/orders/${orderId}`)).status, 404);
  });
});
