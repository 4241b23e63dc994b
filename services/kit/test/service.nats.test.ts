import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Streams } from '@sagamesh/contracts';
import { bootService, type ServiceContext } from '@sagamesh/kit';
import { startNatsServer, type NatsServer } from '@sagamesh/kit/testing';

let server: NatsServer;
before(async () => {
  server = await startNatsServer();
});
after(() => server.stop());

const config = () => ({ NATS_URL: server.url, LOG_LEVEL: 'silent', HOST: '127.0.0.1', JETSTREAM_REPLICAS: 1, PORT: 0 });

test('bootService wires NATS, the platform streams, routes and readiness; stop runs its cleanups while NATS is open, then drains it and closes HTTP', async () => {
  let ready = false;
  let ctx!: ServiceContext;
  const order: string[] = [];
  const svc = await bootService('boot-test', config(), async (c) => {
    ctx = c;
    c.shutdown.onShutdown(() => order.push(`own cleanup, nats open: ${!c.nc.isClosed()}`), 'own');
    return { ready: () => ready, routes: (app) => app.get('/hello', (_req, res) => res.json({ hi: 1 })), extra: 42 };
  });
  assert.equal(svc.extra, 42);
  assert.ok((await ctx.jsm.streams.info(Streams.commands.name)).config.name, 'platform streams declared');
  const base = `http://127.0.0.1:${svc.port}`;
  assert.equal((await fetch(`${base}/readyz`)).status, 503);
  ready = true;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.deepEqual(await (await fetch(`${base}/hello`)).json(), { hi: 1 });

  await svc.stop();
  assert.deepEqual(order, ['own cleanup, nats open: true']);
  assert.ok(ctx.nc.isClosed(), 'NATS drained');
  await assert.rejects(fetch(`${base}/readyz`), 'HTTP closed');
});

test('bootService: a failed start runs the cleanups registered so far and rethrows', async () => {
  let ctx!: ServiceContext;
  let cleaned = false;
  const boom = new Error('wiring failed');
  await assert.rejects(
    bootService('boot-test', config(), async (c) => {
      ctx = c;
      c.shutdown.onShutdown(() => (cleaned = true), 'own');
      throw boom;
    }),
    (err) => err === boom,
  );
  assert.ok(cleaned);
  assert.ok(ctx.nc.isClosed(), 'NATS drained after the failed start');
});
