/**
 * The gateway's HTTP client of orders against a real HTTP server that closes keep-alive sockets the way a
 * server does at its idle timeout, or when its process goes away: the client must not turn that into a 502.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { createLogger, createMetrics, KEEP_ALIVE, loadConfig } from '@sagamesh/runtime';
import { Breakers, UpstreamError } from '../src/breakers.ts';
import { GatewayConfigSchema } from '../src/config.ts';
import { NotDelivered, OrdersClient } from '../src/upstreams.ts';

interface FakeOrders {
  server: Server;
  url: string;
  /** Requests seen, and connections opened. */
  requests: number;
  connections: number;
  /** How many of the coming requests the server drops (destroys the socket without an answer). */
  drop: number;
  /** Drop only requests on a socket that already served one (else every request counts). */
  dropOnlyReused: boolean;
  /** How many of the coming requests get a 503, as from a replica shutting down. */
  unavailable: number;
  /** How many of the coming requests are never answered, as by a process frozen or killed mid-request. */
  stall: number;
  /** How many of the coming requests get 503 overloaded, as from a replica shedding load. */
  overloaded: number;
  /** How many of the coming requests get 503 store_full, as from orders whose event store is full. */
  storeFull: number;
  /** Orders placed, by id (placing an id again with the same body is a no-op, as in orders). */
  placed: Map<string, string>;
}

const served = new WeakMap<Socket, number>();

async function startFakeOrders(keepAliveTimeoutMs: number = KEEP_ALIVE.serverIdleMs): Promise<FakeOrders> {
  const fake = { requests: 0, connections: 0, drop: 0, dropOnlyReused: true, unavailable: 0, stall: 0, overloaded: 0, storeFull: 0, placed: new Map<string, string>() } as FakeOrders;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    fake.requests++;
    const onSocket = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, onSocket);
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      // A POST is acted on before the socket goes: the retry must then reach the same order, not a second one.
      if (req.method === 'POST') {
        const order = JSON.parse(body) as { orderId: string };
        if (!fake.placed.has(order.orderId)) fake.placed.set(order.orderId, body);
      }
      if (fake.drop > 0 && (!fake.dropOnlyReused || onSocket > 1)) {
        fake.drop--;
        req.socket.destroy();
        return;
      }
      if (fake.stall > 0) {
        fake.stall--;
        return;
      }
      if (fake.unavailable > 0) {
        fake.unavailable--;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"shutting_down","message":"going away"}}');
        return;
      }
      if (fake.storeFull > 0) {
        fake.storeFull--;
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '60' }).end('{"error":{"code":"store_full","message":"the order store is full"}}');
        return;
      }
      if (fake.overloaded > 0) {
        fake.overloaded--;
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":{"code":"overloaded","message":"shedding"}}');
        return;
      }
      if (req.method === 'POST') {
        const { orderId } = JSON.parse(body) as { orderId: string };
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ orderId, status: 'PENDING' }));
        return;
      }
      const orderId = req.url!.split('/').at(-1)!;
      const now = new Date().toISOString();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1, unitPrice: 100 }], total: 100, status: 'PENDING', createdAt: now, updatedAt: now }));
    });
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on('connection', () => fake.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(fake, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

const config = loadConfig(GatewayConfigSchema, { LOG_LEVEL: 'silent' });
const log = createLogger('gateway', 'silent');
let breakers: Breakers;
let fake: FakeOrders;
let client: OrdersClient;

before(() => {
  breakers = new Breakers(config, createMetrics('gateway'), log);
});
after(() => breakers.shutdown());

async function rig(keepAliveTimeoutMs?: number, timeoutMs = 2000): Promise<void> {
  fake = await startFakeOrders(keepAliveTimeoutMs);
  client = new OrdersClient(fake.url, timeoutMs, breakers);
}
afterEach(async () => {
  client.close();
  fake.server.closeAllConnections();
  await new Promise((r) => fake.server.close(r));
});

const order = (orderId: string) => ({ orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1 }] });

describe('orders client: a keep-alive socket the server closed is not a failure', () => {
  test('a GET on a pooled socket the server drops is sent once more, on a new connection', async () => {
    await rig();
    assert.equal((await client.get('ord-1'))?.orderId, 'ord-1');
    fake.drop = 1;
    const view = await client.get('ord-2');
    assert.equal(view?.orderId, 'ord-2');
    assert.deepEqual([fake.requests, fake.connections, fake.drop], [3, 2, 0], 'dropped on the pooled socket, answered on a new one');
  });

  test('a POST with its order id is sent once more too, and places the order once', async () => {
    await rig();
    await client.place(order('ord-a'));
    fake.drop = 1; // orders acts on it, then the socket goes before the answer
    const reply = await client.place(order('ord-b'));
    assert.deepEqual(reply, { status: 202, body: { orderId: 'ord-b', status: 'PENDING' } });
    assert.equal(fake.requests, 3);
    assert.deepEqual([...fake.placed.keys()], ['ord-a', 'ord-b']);
  });

  test('a call that fails every time is tried four times in all, then fails', async () => {
    await rig();
    await client.get('ord-1');
    fake.drop = 4;
    fake.dropOnlyReused = false;
    await assert.rejects(client.get('ord-2'), (err: unknown) => err instanceof UpstreamError && err.kind === 'failed');
    assert.equal(fake.requests, 5, 'the first GET, then four attempts');
  });

  test('a reset on a new connection (a replica killed mid-request) is retried too: the POST places its order once', async () => {
    await rig();
    fake.drop = 2;
    fake.dropOnlyReused = false;
    assert.deepEqual(await client.place(order('ord-k')), { status: 202, body: { orderId: 'ord-k', status: 'PENDING' } });
    assert.equal(fake.requests, 3);
    assert.deepEqual([...fake.placed.keys()], ['ord-k']);
  });

  test('an attempt that gets no answer in time is retried: a frozen replica costs latency, not an error', async () => {
    await rig(undefined, 200);
    fake.stall = 1;
    assert.deepEqual(await client.place(order('ord-s')), { status: 202, body: { orderId: 'ord-s', status: 'PENDING' } });
    assert.equal(fake.requests, 2);
    assert.deepEqual([...fake.placed.keys()], ['ord-s']);
  });

  test('a 5xx from a replica going away is sent again (three times at most), then counts as a failure', async () => {
    await rig();
    fake.unavailable = 3;
    assert.equal((await client.get('ord-1'))?.orderId, 'ord-1', 'the fourth attempt is answered');
    assert.equal(fake.requests, 4);
    fake.unavailable = 4;
    await assert.rejects(client.get('ord-2'), (err: unknown) => err instanceof UpstreamError);
    assert.equal(fake.requests, 8, 'four attempts, no more');
  });

  test('a 503 overloaded is not sent again (that is the load being shed): the call fails as overloaded at once', async () => {
    await rig();
    fake.overloaded = 1;
    await assert.rejects(client.place(order('ord-o')), (err: unknown) => err instanceof UpstreamError && err.kind === 'overloaded');
    assert.equal(fake.requests, 1);
  });

  test('a 503 store_full is an answer, not a failure: not sent again, returned as it is', async () => {
    await rig();
    fake.storeFull = 1;
    const reply = await client.place(order('ord-f'));
    assert.deepEqual(reply, { status: 503, body: { error: { code: 'store_full', message: 'the order store is full' } } });
    assert.equal(fake.requests, 1);
  });

  test('a refused connection counts as not delivered (sent once more like a dropped socket), then fails', async () => {
    await rig();
    const closed = new OrdersClient('http://127.0.0.1:1', 2000, breakers);
    try {
      await assert.rejects(closed.get('ord-1'), (err: unknown) => err instanceof UpstreamError && err.cause instanceof NotDelivered && /ECONNREFUSED/.test(err.cause.message));
    } finally {
      closed.close();
    }
  });

  test('the pool closes an idle socket before the server does (it honours the Keep-Alive hint)', async () => {
    // The server announces `Keep-Alive: timeout=2`; the client keeps the socket a second less.
    await rig(2000);
    await client.get('ord-1');
    await sleep(1300);
    await client.get('ord-2');
    assert.equal(fake.connections, 2, 'the second GET opened a new connection rather than reuse one the server is about to close');
  });

  test('our servers keep an idle connection longer than our clients pool one', () => {
    assert.ok(KEEP_ALIVE.clientIdleMs < KEEP_ALIVE.serverIdleMs);
  });
});
