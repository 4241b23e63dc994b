import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  Buckets,
  DomainEvents,
  MAX_BODY_BYTES,
  QuerySubjects,
  Subjects,
  type OrderView,
  type Product,
  type RunView,
} from '@sagamesh/contracts';
import { loadConfig } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { keyScope } from '../src/auth.ts';
import { bodyHashOf, kvKeyOf, orderIdFor, type IdempotencyRecord } from '../src/idempotency.ts';
import { GatewayConfigSchema, start } from '../src/index.ts';
import { ORDERS_ATTEMPTS } from '../src/upstreams.ts';

const KEY_A = 'test-key-a-0123456789';
const KEY_B = 'test-key-b-0123456789';
const ADMIN = 'test-admin-key-0123456789';

// ---------- a small real orders service (HTTP), recording every call ----------

interface OrdersCall {
  method: string;
  path: string;
  body: unknown;
  traceparent: string | undefined;
}

interface FakeOrders {
  url: string;
  calls: OrdersCall[];
  /** As orders stores them: with the owner the gateway sent (none on an order from before owners were recorded). */
  orders: Map<string, OrderView & { owner?: string }>;
  /** 'ok' answers; 'fail' answers 500 to everything. */
  mode: 'ok' | 'fail' | 'overloaded';
  /** Delay before answering a POST, to make concurrent requests overlap. */
  postDelayMs: number;
  close(): Promise<void>;
}

async function startFakeOrders(): Promise<FakeOrders> {
  const app = express();
  app.use(express.json());
  const fake: Omit<FakeOrders, 'url' | 'close'> = { calls: [], orders: new Map(), mode: 'ok', postDelayMs: 0 };
  app.use((req, res, next) => {
    fake.calls.push({ method: req.method, path: req.path, body: req.body, traceparent: req.get('traceparent') });
    if (fake.mode === 'fail') return void res.status(500).json({ error: { code: 'internal', message: 'boom' } });
    if (fake.mode === 'overloaded') return void res.status(503).set('Retry-After', '1').json({ error: { code: 'overloaded', message: 'too many requests in flight' } });
    next();
  });
  // As contracts' OrdersPaths describe it: idempotent by order id, 409 for a taken id, 422 for an unknown sku.
  app.post('/orders', async (req, res) => {
    await new Promise((r) => setTimeout(r, fake.postDelayMs));
    const body = req.body as { orderId?: string; customerId: string; items: { sku: string; quantity: number }[]; owner?: string };
    if (body.items.some((i) => i.sku === 'sku-unknown')) return void res.status(422).json({ error: { code: 'unknown_sku', message: 'unknown sku(s): sku-unknown' } });
    const orderId = body.orderId ?? `ord-${randomUUID()}`;
    const existing = fake.orders.get(orderId);
    if (existing && (existing.customerId !== body.customerId || existing.owner !== body.owner || JSON.stringify(existing.items.map(({ sku, quantity }) => ({ sku, quantity }))) !== JSON.stringify(body.items))) {
      return void res.status(409).json({ error: { code: 'order_exists', message: 'taken' } });
    }
    if (!existing) {
      const lines = body.items.map((i) => ({ ...i, unitPrice: 100 }));
      const now = new Date().toISOString();
      const owner = body.owner === undefined ? {} : { owner: body.owner };
      fake.orders.set(orderId, { orderId, customerId: body.customerId, items: lines, total: lines.reduce((s, l) => s + l.quantity * 100, 0), status: 'PENDING', createdAt: now, updatedAt: now, ...owner });
    }
    res.status(202).json({ orderId, status: 'PENDING' });
  });
  app.get('/orders/:id', (req, res) => {
    const order = fake.orders.get(req.params.id);
    if (!order) return void res.status(404).json({ error: { code: 'not_found', message: 'no such order' } });
    res.json({ ...order, internalField: 'not for the public' });
  });
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  });
}

// ---------- the gateway under test and a client for it ----------

type Gateway = Awaited<ReturnType<typeof start>>;

/** Runs `fn` with a gateway of its own (`env` on top of the test config) in front of a fake orders of its own; stops both after. */
async function withOwnGateway(env: Record<string, string>, fn: (g: Gateway, upstream: FakeOrders) => Promise<void>): Promise<void> {
  const upstream = await startFakeOrders();
  const g = await startGateway(nats, upstream, env);
  try {
    await fn(g, upstream);
  } finally {
    await g.stop();
    await upstream.close();
  }
}

function startGateway(nats: NatsServer, orders: FakeOrders, env: Record<string, string> = {}): Promise<Gateway> {
  return start(
    loadConfig(GatewayConfigSchema, {
      PORT: '0',
      HOST: '127.0.0.1',
      NATS_URL: nats.url,
      ORDERS_URL: orders.url,
      API_KEYS: `${KEY_A},${KEY_B}`,
      ADMIN_API_KEYS: ADMIN,
      LOG_LEVEL: 'silent',
      PRODUCTS_CACHE_TTL_MS: '600000',
      FAULT_INJECTION: 'true',
      ...env,
    }),
  );
}

interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON under test
}

/** Asserts that the reply is the platform's error body, with this status and code. */
function assertError(r: Reply, status: number, code: string, message = JSON.stringify(r.body)): void {
  assert.equal(r.status, status, message);
  assert.equal(r.body.error.code, code);
}

async function call(
  gw: Gateway,
  method: string,
  path: string,
  opts: { key?: string | null; body?: unknown; raw?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? KEY_A : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (opts.raw !== undefined || opts.body !== undefined) {
    body = opts.raw ?? JSON.stringify(opts.body);
    headers['content-type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${gw.port}${path}`, { method, headers, body: body ?? null });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const order = { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 2 }] };

function metricValue(metrics: string, name: string, labels: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function metrics(gw: Gateway): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.port}/metrics`)).text();
}

// ---------- shared rig ----------

let nats: NatsServer;
let nc: NatsConnection;
let ordersUp: FakeOrders;
let gw: Gateway;
const subs: Subscription[] = [];

async function idempotencyKeys(): Promise<string[]> {
  const kv = await new Kvm(jetstream(nc)).open(Buckets.idempotency);
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  return keys;
}

function respond(subject: string, answer: (data: string) => unknown): { calls: number; sub: Subscription } {
  const state = { calls: 0, sub: undefined as unknown as Subscription };
  state.sub = nc.subscribe(subject, {
    callback: (_err, msg) => {
      state.calls++;
      msg.respond(JSON.stringify(answer(msg.string())));
    },
  });
  subs.push(state.sub);
  return state;
}

before(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  ordersUp = await startFakeOrders();
  gw = await startGateway(nats, ordersUp);
  await nc.flush();
});

after(async () => {
  await gw?.stop();
  for (const s of subs) s.unsubscribe();
  await nc?.close();
  await ordersUp?.close();
  await nats?.stop();
});

describe('bad requests are refused with a JSON reason and create nothing', () => {
  const big = { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1 }], pad: 'x'.repeat(MAX_BODY_BYTES) };
  const cases: { name: string; status: number; code: string; message?: RegExp; key?: string | null; raw?: string; body?: unknown; contentType?: string; headers?: Record<string, string> }[] = [
    { name: 'malformed JSON', status: 400, code: 'invalid_request', raw: '{"customerId": "c-1", "items": [', message: /malformed JSON/ },
    { name: 'JSON that is not an object', status: 400, code: 'invalid_request', raw: '"an order"', message: /malformed JSON/ },
    { name: 'wrong type (quantity as string)', status: 400, code: 'invalid_request', body: { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: '2' }] }, message: /^\/items\/0\/quantity: / },
    { name: 'wrong type (items not an array)', status: 400, code: 'invalid_request', body: { customerId: 'c-1', items: 'sku-1' }, message: /^\/items: / },
    { name: 'quantity out of range', status: 400, code: 'invalid_request', body: { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 0 }] }, message: /\/items\/0\/quantity/ },
    { name: 'no items', status: 400, code: 'invalid_request', body: { customerId: 'c-1', items: [] }, message: /^\/items: / },
    { name: 'missing fields', status: 400, code: 'invalid_request', body: {}, message: /\/customerId: .*\/items: /s },
    { name: 'unknown field', status: 400, code: 'invalid_request', body: { ...order, coupon: 'FREE' }, message: /\/coupon: / },
    { name: 'unknown field in an item', status: 400, code: 'invalid_request', body: { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1, price: 1 }] }, message: /\/items\/0\/price: / },
    { name: 'customer id with a separator', status: 400, code: 'invalid_request', body: { ...order, customerId: 'c.1' }, message: /^\/customerId: / },
    { name: 'oversized body', status: 413, code: 'payload_too_large', body: big, message: /16384 bytes/ },
    { name: 'wrong content type', status: 415, code: 'unsupported_media_type', raw: JSON.stringify(order), contentType: 'text/plain', message: /application\/json/ },
    { name: 'form-encoded body', status: 415, code: 'unsupported_media_type', raw: 'customerId=c-1', contentType: 'application/x-www-form-urlencoded' },
    { name: 'no body at all', status: 400, code: 'invalid_request', raw: '', message: /JSON body is required/ },
    { name: 'missing API key', status: 401, code: 'unauthorized', key: null, body: order, message: /Authorization/ },
    { name: 'invalid API key', status: 401, code: 'unauthorized', key: 'not-a-valid-key-0123456789', body: order, message: /invalid API key/ },
    { name: 'bad idempotency key (a dot)', status: 400, code: 'invalid_request', body: order, headers: { 'idempotency-key': 'a.b' }, message: /^Idempotency-Key: / },
    { name: 'bad idempotency key (too long)', status: 400, code: 'invalid_request', body: order, headers: { 'idempotency-key': 'k'.repeat(129) }, message: /^Idempotency-Key: / },
    { name: 'bad idempotency key with a bad body', status: 400, code: 'invalid_request', body: {}, headers: { 'idempotency-key': 'has space' } },
    { name: 'bad body with a good idempotency key', status: 400, code: 'invalid_request', body: { ...order, extra: 1 }, headers: { 'idempotency-key': 'good-key-1' }, message: /\/extra/ },
    { name: 'invalid key with a good idempotency key', status: 401, code: 'unauthorized', key: 'not-a-valid-key-0123456789', body: order, headers: { 'idempotency-key': 'good-key-2' } },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const r = await call(gw, 'POST', '/api/orders', c);
      assertError(r, c.status, c.code);
      assert.equal(typeof r.body.error.message, 'string');
      if (c.message) assert.match(r.body.error.message, c.message);
      if (c.status === 401) assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    });
  }
  test('none of them reached orders or wrote an idempotency record', async () => {
    assert.deepEqual(ordersUp.calls, []);
    assert.deepEqual(await idempotencyKeys(), []);
  });
});

describe('routing', () => {
  test('unknown routes are a JSON 404', async () => {
    for (const [method, path] of [['GET', '/nope'], ['GET', '/api/nope'], ['DELETE', '/api/orders']] as const) {
      assertError(await call(gw, method, path), 404, 'not_found');
    }
  });
  test('an order id that cannot exist is a 400', async () => {
    const r = await call(gw, 'GET', '/api/orders/a.b');
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^orderId: /);
  });
  test('admin routes need an API key', async () => {
    for (const [method, path] of [['GET', '/admin/faults'], ['DELETE', '/admin/faults'], ['GET', '/admin/audit']] as const) {
      const r = await call(gw, method, path, { key: null });
      assert.equal(r.status, 401);
    }
  });
  test('ready once NATS is connected', async () => {
    const r = await fetch(`http://127.0.0.1:${gw.port}/readyz`);
    assert.equal(r.status, 200);
  });
});

describe('placing orders', () => {
  test('an order without an idempotency key is forwarded and answered 202 with a Location', async () => {
    const before = ordersUp.calls.length;
    const r = await call(gw, 'POST', '/api/orders', { body: order });
    assert.equal(r.status, 202);
    assert.deepEqual(Object.keys(r.body).sort(), ['orderId', 'status']);
    assert.equal(r.body.status, 'PENDING');
    assert.equal(r.headers.get('location'), `/api/orders/${r.body.orderId}`);
    assert.equal(r.headers.get('idempotent-replayed'), null);
    assert.equal(ordersUp.calls.length, before + 1);
    // The gateway names the order (so a call to orders that is sent again reaches the same order).
    assert.match(r.body.orderId, /^ord-[A-Za-z0-9_-]{16}$/);
    // The owner is the caller's scope (a hash), never the key.
    assert.deepEqual(ordersUp.calls.at(-1)!.body, { ...order, orderId: r.body.orderId, owner: keyScope(KEY_A) });
    assert.ok(ordersUp.orders.has(r.body.orderId));
    // Two requests without a key are two orders.
    const again = await call(gw, 'POST', '/api/orders', { body: order });
    assert.notEqual(again.body.orderId, r.body.orderId);
  });

  test('a replay with the same key and body returns the first response, marked, with one upstream call', async () => {
    const before = ordersUp.calls.length;
    const headers = { 'idempotency-key': 'replay-1' };
    const first = await call(gw, 'POST', '/api/orders', { body: order, headers });
    assert.equal(first.status, 202);
    // Same order, other key order and spacing: still the same body.
    const second = await call(gw, 'POST', '/api/orders', { raw: '{ "items": [{"quantity": 2, "sku": "sku-1"}], "customerId": "c-1" }', headers });
    assert.equal(second.status, 202);
    assert.deepEqual(second.body, first.body);
    assert.equal(second.headers.get('location'), first.headers.get('location'));
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal(first.headers.get('idempotent-replayed'), null);
    assert.equal(ordersUp.calls.length, before + 1);
  });

  test('the same key with a different body is a 422 and creates nothing', async () => {
    const headers = { 'idempotency-key': 'reuse-1' };
    const first = await call(gw, 'POST', '/api/orders', { body: order, headers });
    assert.equal(first.status, 202);
    const before = ordersUp.calls.length;
    const r = await call(gw, 'POST', '/api/orders', { body: { ...order, items: [{ sku: 'sku-1', quantity: 3 }] }, headers });
    assertError(r, 422, 'idempotency_key_reused');
    assert.equal(ordersUp.calls.length, before);
  });

  test('orders refusing an order is passed on, and replayed under its idempotency key', async () => {
    const headers = { 'idempotency-key': 'unknown-sku-1' };
    const bad = { customerId: 'c-1', items: [{ sku: 'sku-unknown', quantity: 1 }] };
    const r = await call(gw, 'POST', '/api/orders', { body: bad, headers });
    assert.equal(r.status, 422);
    assert.deepEqual(r.body, { error: { code: 'unknown_sku', message: 'unknown sku(s): sku-unknown' } });
    const before = ordersUp.calls.length;
    const again = await call(gw, 'POST', '/api/orders', { body: bad, headers });
    assert.equal(again.status, 422);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(ordersUp.calls.length, before);
  });

  test('idempotency keys are scoped per API key', async () => {
    const headers = { 'idempotency-key': 'shared-key' };
    const a = await call(gw, 'POST', '/api/orders', { body: order, headers });
    const b = await call(gw, 'POST', '/api/orders', { body: { ...order, customerId: 'c-2' }, headers, key: KEY_B });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.notEqual(a.body.orderId, b.body.orderId);
    assert.equal(b.headers.get('idempotent-replayed'), null);
  });

  test('concurrent duplicates: one upstream call, every one gets the first response', async () => {
    ordersUp.postDelayMs = 150;
    try {
      const headers = { 'idempotency-key': 'concurrent-1' };
      const replies = await Promise.all(Array.from({ length: 6 }, () => call(gw, 'POST', '/api/orders', { body: order, headers })));
      const ids = new Set(replies.map((r) => r.body.orderId));
      assert.equal(ids.size, 1);
      assert.ok(replies.every((r) => r.status === 202));
      assert.equal(replies.filter((r) => r.headers.get('idempotent-replayed') === null).length, 1);
      const [orderId] = ids;
      assert.equal(ordersUp.calls.filter((c) => c.method === 'POST' && (c.body as { orderId: string }).orderId === orderId).length, 1);
    } finally {
      ordersUp.postDelayMs = 0;
    }
  });

  test('a request that died mid-way (pending record, order already placed) is taken over: still one order', async () => {
    const idempotencyKey = 'crashed-mid-request';
    const orderId = orderIdFor(keyScope(KEY_A), idempotencyKey);
    // What a gateway that crashed after orders accepted the order, before recording the answer, leaves behind.
    const now = new Date().toISOString();
    ordersUp.orders.set(orderId, { orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 2, unitPrice: 100 }], total: 200, status: 'PENDING', createdAt: now, updatedAt: now, owner: keyScope(KEY_A) });
    const kv = await new Kvm(jetstream(nc)).open(Buckets.idempotency);
    const stale: IdempotencyRecord = { state: 'pending', bodyHash: bodyHashOf(order), orderId, startedAt: Date.now() - 60_000 };
    await kv.create(kvKeyOf(keyScope(KEY_A), idempotencyKey), JSON.stringify(stale));

    const r = await call(gw, 'POST', '/api/orders', { body: order, headers: { 'idempotency-key': idempotencyKey } });
    assert.equal(r.status, 202);
    assert.equal(r.body.orderId, orderId);
    assert.equal([...ordersUp.orders.keys()].filter((id) => id === orderId).length, 1);
    const replay = await call(gw, 'POST', '/api/orders', { body: order, headers: { 'idempotency-key': idempotencyKey } });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.body.orderId, orderId);
  });

  test('a key whose request failed upstream is released: the retry places the same order', async () => {
    const headers = { 'idempotency-key': 'retry-after-failure' };
    ordersUp.mode = 'fail';
    let failed: Reply;
    try {
      failed = await call(gw, 'POST', '/api/orders', { body: order, headers });
    } finally {
      ordersUp.mode = 'ok';
    }
    assertError(failed, 502, 'upstream_error');
    const failedId = (ordersUp.calls.at(-1)!.body as { orderId: string }).orderId;
    const retry = await call(gw, 'POST', '/api/orders', { body: order, headers });
    assert.equal(retry.status, 202);
    assert.equal(retry.headers.get('idempotent-replayed'), null);
    assert.equal(retry.body.orderId, failedId);
  });
});

describe('reading orders', () => {
  const run = (runId: string): RunView => ({
    runId,
    definitionKey: 'builtin.order-fulfillment',
    revision: 'r1',
    origin: 'order',
    phase: 'Running',
    currentStep: 'charge-payment',
    steps: [
      { name: 'reserve-inventory', status: 'Succeeded', attempts: 1, compensationAttempts: 0 },
      { name: 'charge-payment', status: 'Running', attempts: 2, compensationAttempts: 0 },
      { name: 'create-shipment', status: 'Pending', attempts: 0, compensationAttempts: 0 },
    ],
    startedAt: new Date().toISOString(),
    version: 3,
  });

  test('the order view joins the order and its saga progress', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order });
    const engine = respond(Subjects.engine('get'), (data) => ({ run: run((JSON.parse(data) as { runId: string }).runId) }));
    await nc.flush();
    try {
      const r = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.orderId, placed.body.orderId);
      assert.equal(r.body.customerId, 'c-1');
      assert.deepEqual(r.body.items, [{ sku: 'sku-1', quantity: 2, unitPrice: 100 }]);
      assert.equal(r.body.total, 200);
      assert.equal(r.body.status, 'PENDING');
      assert.equal(r.body.internalField, undefined);
      assert.equal(r.body.degraded, undefined);
      assert.deepEqual(r.body.saga, {
        id: placed.body.orderId,
        phase: 'Running',
        steps: [
          { name: 'reserve-inventory', status: 'Succeeded', attempts: 1 },
          { name: 'charge-payment', status: 'Running', attempts: 2 },
          { name: 'create-shipment', status: 'Pending', attempts: 0 },
        ],
      });
      assert.ok(engine.calls >= 1);
    } finally {
      engine.sub.unsubscribe();
    }
  });

  test('an ended order whose run was read just before it ended: the run is read once more, never shown in progress', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order });
    ordersUp.orders.get(placed.body.orderId)!.status = 'CONFIRMED';
    const engine = respond(Subjects.engine('get'), (data) => {
      const r = run((JSON.parse(data) as { runId: string }).runId);
      return { run: engine.calls === 1 ? r : { ...r, phase: 'Succeeded', currentStep: undefined, steps: r.steps.map((st) => ({ ...st, status: 'Succeeded' })) } };
    });
    await nc.flush();
    try {
      const r = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`);
      assert.equal(r.body.status, 'CONFIRMED');
      assert.equal(r.body.saga.phase, 'Succeeded');
      assert.equal(engine.calls, 2);
    } finally {
      engine.sub.unsubscribe();
    }
  });

  test('an ended order whose run was looked up before it began (a GET right after the POST): the run is read once more', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order });
    ordersUp.orders.get(placed.body.orderId)!.status = 'CONFIRMED';
    const engine = respond(Subjects.engine('get'), (data) => {
      const r = run((JSON.parse(data) as { runId: string }).runId);
      return engine.calls === 1 ? { error: { code: 'not_found', message: 'no run' } } : { run: { ...r, phase: 'Succeeded', currentStep: undefined, steps: r.steps.map((st) => ({ ...st, status: 'Succeeded' })) } };
    });
    await nc.flush();
    try {
      const r = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`);
      assert.equal(r.body.saga?.phase, 'Succeeded', 'an ended order shown without its saga');
      assert.equal(engine.calls, 2);
    } finally {
      engine.sub.unsubscribe();
    }
  });

  test('an order whose saga the engine does not know yet has no saga, and is not degraded', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order });
    const engine = respond(Subjects.engine('get'), () => ({ error: { code: 'not_found', message: 'no run' } }));
    await nc.flush();
    try {
      const r = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.saga, undefined);
      assert.equal(r.body.degraded, undefined);
    } finally {
      engine.sub.unsubscribe();
    }
  });

  test('with the engine down the order is still served, and says the saga is missing: degraded ["saga"]', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order });
    const r = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.orderId, placed.body.orderId);
    assert.equal(r.body.status, 'PENDING');
    assert.equal(r.body.saga, undefined);
    assert.deepEqual(r.body.degraded, ['saga']);
  });

  test('with the engine slow the order is still served, degraded ["saga"]', async () => {
    const g = await startGateway(nats, ordersUp, { ENGINE_TIMEOUT_MS: '100' });
    const silent = nc.subscribe(Subjects.engine('get'), { callback: () => undefined }); // takes requests, never answers
    subs.push(silent);
    await nc.flush();
    try {
      const placed = await call(g, 'POST', '/api/orders', { body: order });
      const r = await call(g, 'GET', `/api/orders/${placed.body.orderId}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.orderId, placed.body.orderId);
      assert.equal(r.body.saga, undefined);
      assert.deepEqual(r.body.degraded, ['saga']);
    } finally {
      silent.unsubscribe();
      await g.stop();
    }
  });

  test('an unknown order is a 404', async () => {
    assertError(await call(gw, 'GET', '/api/orders/no-such-order'), 404, 'not_found');
  });
});

describe('roles: customer keys read their own orders, admin keys everything', () => {
  /** The answer to a customer for an order that is not theirs: the same as for an order that does not exist. */
  const notFound = (orderId: string) => ({ status: 404, body: { error: { code: 'not_found', message: `no order ${orderId}` } } });
  const answer = (r: Reply) => ({ status: r.status, body: r.body });

  test("customer B cannot read customer A's order: 404 not_found, the same answer as a missing order", async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order, key: KEY_A });
    const orderId = placed.body.orderId as string;
    assert.equal((await call(gw, 'GET', `/api/orders/${orderId}`, { key: KEY_A })).status, 200);
    assert.deepEqual(answer(await call(gw, 'GET', `/api/orders/${orderId}`, { key: KEY_B })), notFound(orderId));
    assert.deepEqual(answer(await call(gw, 'GET', '/api/orders/ord-never-placed', { key: KEY_B })), notFound('ord-never-placed'));
    // The same Idempotency-Key under B is B's own order, never a way to A's.
    const headers = { 'idempotency-key': 'owned-1' };
    const a = await call(gw, 'POST', '/api/orders', { body: order, headers, key: KEY_A });
    const b = await call(gw, 'POST', '/api/orders', { body: order, headers, key: KEY_B });
    assert.notEqual(a.body.orderId, b.body.orderId);
    assert.deepEqual(answer(await call(gw, 'GET', `/api/orders/${a.body.orderId}`, { key: KEY_B })), notFound(a.body.orderId));
    assert.equal((await call(gw, 'GET', `/api/orders/${b.body.orderId}`, { key: KEY_B })).status, 200);
  });

  test('an admin key reads any order; the public view never shows the owner', async () => {
    const placed = await call(gw, 'POST', '/api/orders', { body: order, key: KEY_A });
    const byAdmin = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`, { key: ADMIN });
    assert.equal(byAdmin.status, 200);
    assert.equal(byAdmin.body.orderId, placed.body.orderId);
    const byOwner = await call(gw, 'GET', `/api/orders/${placed.body.orderId}`, { key: KEY_A });
    for (const view of [byAdmin.body, byOwner.body]) {
      assert.equal(view.owner, undefined);
      assert.ok(!JSON.stringify(view).includes(keyScope(KEY_A)), 'no trace of the owner');
    }
    // An admin's own order belongs to the admin: customers do not see it.
    const adminOrder = await call(gw, 'POST', '/api/orders', { body: order, key: ADMIN });
    assert.equal(ordersUp.orders.get(adminOrder.body.orderId)!.owner, keyScope(ADMIN));
    assert.deepEqual(answer(await call(gw, 'GET', `/api/orders/${adminOrder.body.orderId}`, { key: KEY_A })), notFound(adminOrder.body.orderId));
  });

  test('an order without an owner (placed before owners were recorded) is read by admin keys only', async () => {
    const orderId = 'ord-from-before-owners';
    const now = new Date().toISOString();
    ordersUp.orders.set(orderId, { orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1, unitPrice: 100 }], total: 100, status: 'CONFIRMED', createdAt: now, updatedAt: now });
    assert.deepEqual(answer(await call(gw, 'GET', `/api/orders/${orderId}`, { key: KEY_A })), notFound(orderId));
    const byAdmin = await call(gw, 'GET', `/api/orders/${orderId}`, { key: ADMIN });
    assert.equal(byAdmin.status, 200);
    assert.equal(byAdmin.body.status, 'CONFIRMED');
  });

  test('every /admin/* route refuses a customer key: 403 forbidden with the reason, and does nothing', async () => {
    const routes = [
      ['PUT', '/admin/faults', { target: 'payments.charge', failureRate: 1 }],
      ['GET', '/admin/faults', undefined],
      ['DELETE', '/admin/faults', undefined],
      ['GET', '/admin/audit', undefined],
      ['GET', '/admin/no-such-route', undefined],
      ['GET', '/ADMIN/audit', undefined],
    ] as const;
    for (const key of [KEY_A, KEY_B]) {
      for (const [method, path, body] of routes) {
        const r = await call(gw, method, path, { key, ...(body ? { body } : {}) });
        assertError(r, 403, 'forbidden', `${method} ${path}`);
        assert.match(r.body.error.message, /needs an admin key; this API key is a customer key/);
      }
    }
    // The PUT set nothing.
    const faults = await call(gw, 'GET', '/admin/faults', { key: ADMIN });
    assert.equal(faults.status, 200);
    assert.ok(!(faults.body as { target: string; failureRate: number }[]).some((f) => f.target === 'payments.charge' && f.failureRate === 1));
  });

  test('a missing or invalid key is still a 401 on /admin/*, before any role', async () => {
    for (const key of [null, 'not-a-valid-key-0123456789']) {
      const r = await call(gw, 'GET', '/admin/audit', { key });
      assertError(r, 401, 'unauthorized');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    }
  });

  test('with fault injection off, an admin key is told why; a customer key is still refused for its role', async () => {
    await withOwnGateway({ FAULT_INJECTION: 'false' }, async (g) => {
      assertError(await call(g, 'GET', '/admin/faults', { key: KEY_A }), 403, 'forbidden');
      assertError(await call(g, 'GET', '/admin/faults', { key: ADMIN }), 403, 'fault_injection_off');
    });
  });
});

describe('products', () => {
  test('served from a cache that stock_changed events invalidate', async () => {
    let available = 10;
    const products = (): Product[] => [{ sku: 'sku-1', name: 'Trail running shoes', price: 8999, available }];
    const inventory = respond(QuerySubjects.products, () => products());
    await nc.flush();
    try {
      const first = await call(gw, 'GET', '/api/products');
      assert.equal(first.status, 200);
      assert.deepEqual(first.body, products());
      available = 7;
      assert.deepEqual((await call(gw, 'GET', '/api/products')).body[0].available, 10);
      assert.equal(inventory.calls, 1);
      nc.publish(Subjects.domainEvent(DomainEvents.stockChanged.aggregate, DomainEvents.stockChanged.type), JSON.stringify({ skus: ['sku-1'] }));
      await waitFor(async () => (await call(gw, 'GET', '/api/products')).body[0].available === 7, { what: 'the cache to be invalidated' });
      const calls = inventory.calls;
      await call(gw, 'GET', '/api/products');
      assert.equal(inventory.calls, calls);
    } finally {
      inventory.sub.unsubscribe();
    }
  });

  test('a product list that breaks the contract is a 502', async () => {
    const other = await startGateway(nats, ordersUp, { PRODUCTS_CACHE_TTL_MS: '0' });
    const inventory = respond(QuerySubjects.products, () => [{ sku: 'sku-1', price: 'free' }]);
    await nc.flush();
    try {
      assertError(await call(other, 'GET', '/api/products'), 502, 'upstream_error');
    } finally {
      inventory.sub.unsubscribe();
      await other.stop();
    }
  });
});

describe('admin', () => {
  test('faults: put (validated, defaults applied), list, clear', async () => {
    const admin = { key: ADMIN };
    const bad = await call(gw, 'PUT', '/admin/faults', { ...admin, body: { target: 'payments.charge', failureRate: 2 } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^\/failureRate: /);
    const badTarget = await call(gw, 'PUT', '/admin/faults', { ...admin, body: { target: 'payments' } });
    assert.equal(badTarget.status, 400);
    assert.equal((await call(gw, 'PUT', '/admin/faults', { ...admin, raw: 'target=x', contentType: 'text/plain' })).status, 415);

    const put = await call(gw, 'PUT', '/admin/faults', { ...admin, body: { target: 'payments.charge', failureRate: 0.2 } });
    assert.equal(put.status, 200);
    const expected = { target: 'payments.charge', failureRate: 0.2, latencyMs: 0, crashAfterCommit: false };
    assert.deepEqual(put.body, expected);
    await waitFor(async () => JSON.stringify((await call(gw, 'GET', '/admin/faults', admin)).body) === JSON.stringify([expected]), { what: 'the fault to be listed' });

    const del = await call(gw, 'DELETE', '/admin/faults', admin);
    assert.equal(del.status, 204);
    await waitFor(async () => (await call(gw, 'GET', '/admin/faults', admin)).body.length === 0, { what: 'the faults to be cleared' });
  });

  test('faults: with fault injection off (a cluster by default) every /admin/faults call is a 403 that says why', async () => {
    await withOwnGateway({ FAULT_INJECTION: 'false' }, async (g) => {
      for (const [method, body] of [['PUT', { target: 'payments.charge', failureRate: 1 }], ['GET', undefined], ['DELETE', undefined]] as const) {
        const r = await call(g, method, '/admin/faults', { key: ADMIN, ...(body ? { body } : {}) });
        assertError(r, 403, 'fault_injection_off', `${method} /admin/faults`);
        assert.match(r.body.error.message, /FAULT_INJECTION=false/);
      }
    });
  });

  test('audit: assembled from every service\'s books', async () => {
    const parts = [
      respond(QuerySubjects.books('inventory'), () => ({ skus: { 'sku-1': { initial: 10, available: 7, reserved: 1, sold: 2, soldK8s: 0 } } })),
      respond(QuerySubjects.books('payments'), () => ({ order: { charged: 300, refunded: 100 }, k8s: { charged: 50, refunded: 0 } })),
      respond(QuerySubjects.books('shipping'), () => ({ order: { created: 2, cancelled: 1 }, k8s: { created: 1, cancelled: 0 } })),
      respond(QuerySubjects.books('orders'), () => ({ confirmed: { count: 1, total: 200 }, cancelled: { count: 1 }, pending: { count: 1 }, failed: { count: 0 } })),
    ];
    await nc.flush();
    try {
      const r = await call(gw, 'GET', '/admin/audit', { key: ADMIN });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {
        skus: { 'sku-1': { initial: 10, available: 7, reserved: 1, sold: 2, soldK8s: 0 } },
        payments: { charged: 300, refunded: 100 },
        shipping: { created: 2, cancelled: 1 },
        orders: { confirmed: { count: 1, total: 200 }, cancelled: { count: 1 }, pending: { count: 1 }, failed: { count: 0 } },
        k8s: { payments: { charged: 50, refunded: 0 }, shipping: { created: 1, cancelled: 0 } },
      });
    } finally {
      for (const p of parts) p.sub.unsubscribe();
      // The server must have the unsubscriptions before the next test asks: else it routes to them, and times out.
      await nc.flush();
    }
  });

  test('audit: a service that does not answer makes it fail with the reason', async () => {
    assertError(await call(gw, 'GET', '/admin/audit', { key: ADMIN }), 502, 'upstream_error');
  });
});

describe('circuit breaker', () => {
  test('opens after upstream failures, answers 503 without calling, then half-opens and recovers', async () => {
    await withOwnGateway({ BREAKER_VOLUME_THRESHOLD: '3', BREAKER_RESET_MS: '300' }, async (g, upstream) => {
      upstream.mode = 'fail';
      for (let i = 0; i < 3; i++) assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 502);
      // Each request tried orders ORDERS_ATTEMPTS times (idempotent), and counted as one failure.
      assert.equal(upstream.calls.length, 3 * ORDERS_ATTEMPTS);

      const rejected = await call(g, 'POST', '/api/orders', { body: order });
      assertError(rejected, 503, 'upstream_unavailable');
      assert.ok(Number(rejected.headers.get('retry-after')) >= 1);
      assert.equal((await call(g, 'GET', '/api/orders/any-order')).status, 503);
      assert.equal(upstream.calls.length, 3 * ORDERS_ATTEMPTS, 'an open circuit does not call the upstream');
      let m = await metrics(g);
      assert.equal(metricValue(m, 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 2);
      assert.equal(metricValue(m, 'sagamesh_requests_rejected_total', 'reason="circuit_open"'), 2);

      upstream.mode = 'ok';
      await waitFor(async () => metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"') === 1, { what: 'half-open' });
      const trial = await call(g, 'POST', '/api/orders', { body: order });
      assert.equal(trial.status, 202);
      m = await metrics(g);
      assert.equal(metricValue(m, 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 0);
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 202);
    });
  });

  test('an upstream shedding load (503 overloaded) is passed on and does not open the circuit: it answered', async () => {
    await withOwnGateway({ BREAKER_VOLUME_THRESHOLD: '3', BREAKER_RESET_MS: '300' }, async (g, upstream) => {
      upstream.mode = 'overloaded';
      for (let i = 0; i < 6; i++) {
        const r = await call(g, 'POST', '/api/orders', { body: order });
        assertError(r, 503, 'overloaded');
        assert.ok(r.headers.get('retry-after'));
      }
      assert.equal(metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 0, 'still closed');
      upstream.mode = 'ok';
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 202);
    });
  });

  test('a failed trial call opens the circuit again', async () => {
    await withOwnGateway({ BREAKER_VOLUME_THRESHOLD: '1', BREAKER_RESET_MS: '200' }, async (g, upstream) => {
      upstream.mode = 'fail';
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 502);
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 503);
      await waitFor(async () => metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"') === 1, { what: 'half-open' });
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 502);
      assert.equal(metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 2);
      assert.equal((await call(g, 'POST', '/api/orders', { body: order })).status, 503);
      assert.equal(upstream.calls.length, 2 * ORDERS_ATTEMPTS);
    });
  });

  test('an upstream past its timeout is a 504, and counts as a failure', async () => {
    await withOwnGateway({ ORDERS_TIMEOUT_MS: '100', BREAKER_VOLUME_THRESHOLD: '1' }, async (g, upstream) => {
      upstream.postDelayMs = 1000;
      const r = await call(g, 'POST', '/api/orders', { body: order });
      assertError(r, 504, 'upstream_timeout');
      assert.equal(metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 2);
    });
  });

  test('a 4xx from orders is an answer, not a failure', async () => {
    await withOwnGateway({ BREAKER_VOLUME_THRESHOLD: '1' }, async (g, upstream) => {
      for (let i = 0; i < 3; i++) assert.equal((await call(g, 'GET', '/api/orders/unknown')).status, 404);
      assert.equal(metricValue(await metrics(g), 'sagamesh_circuit_breaker_state', 'upstream="orders"'), 0);
    });
  });
});

describe('rate limit', () => {
  test('per API key: 429 with Retry-After past the limit, other keys unaffected', async () => {
    const g = await startGateway(nats, ordersUp, { RATE_LIMIT_POINTS: '3', RATE_LIMIT_WINDOW_S: '60' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await call(g, 'GET', '/admin/faults', { key: ADMIN })).status, 200);
      const limited = await call(g, 'GET', '/admin/faults', { key: ADMIN });
      assertError(limited, 429, 'rate_limited');
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      const before = ordersUp.calls.length;
      assert.equal((await call(g, 'POST', '/api/orders', { key: ADMIN, body: order })).status, 429);
      assert.equal(ordersUp.calls.length, before);
      assert.equal((await call(g, 'POST', '/api/orders', { key: KEY_B, body: order })).status, 202);
      assert.equal(metricValue(await metrics(g), 'sagamesh_requests_rejected_total', 'reason="rate_limit"'), 2);
    } finally {
      await g.stop();
    }
  });
});

describe('readiness', () => {
  test('not ready while NATS is unreachable', async () => {
    const own = await startNatsServer();
    const g = await startGateway(own, ordersUp);
    const readyz = async () => (await fetch(`http://127.0.0.1:${g.port}/readyz`)).status;
    try {
      assert.equal(await readyz(), 200);
      own.kill();
      await waitFor(async () => (await readyz()) === 503, { what: 'readyz to turn 503' });
    } finally {
      await g.stop();
      await own.stop();
    }
  });
});

describe('a NATS server going away', () => {
  test('an order with an Idempotency-Key placed while NATS restarts waits for its store and is accepted, not 503', async () => {
    const own = await startNatsServer();
    const upstream = await startFakeOrders();
    const g = await startGateway(own, upstream);
    let restarted: NatsServer | undefined;
    try {
      assert.equal((await call(g, 'POST', '/api/orders', { body: order, headers: { 'idempotency-key': 'before-restart' } })).status, 202);
      own.kill();
      const placing = call(g, 'POST', '/api/orders', { body: order, headers: { 'idempotency-key': 'during-restart' } });
      // Down for longer than one attempt, shorter than the store's retry budget: as a reconnect plus an election.
      await new Promise((r) => setTimeout(r, 1500));
      restarted = await startNatsServer({ port: own.port, storeDir: own.storeDir });
      const r = await placing;
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const replay = await call(g, 'POST', '/api/orders', { body: order, headers: { 'idempotency-key': 'during-restart' } });
      assert.equal(replay.body.orderId, r.body.orderId, 'the key was recorded: a replay finds the same order');
    } finally {
      await g.stop();
      await upstream.close();
      await restarted?.stop();
      await own.stop();
    }
  });
});

describe('shutdown', () => {
  test('stop() closes the port', async () => {
    const g = await startGateway(nats, ordersUp);
    assert.equal((await call(g, 'GET', '/admin/faults', { key: ADMIN })).status, 200);
    await g.stop();
    await assert.rejects(fetch(`http://127.0.0.1:${g.port}/livez`));
  });
});
