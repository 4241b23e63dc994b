import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Streams } from '@sagamesh/contracts';
import { bootService, type ServiceContext } from '@sagamesh/runtime';
import { freePort, type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';

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

test('bootService answers /livez while NATS is not up yet and turns ready once it is wired (no startup-probe restarts)', async () => {
  const [natsPort, httpPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${httpPort}`;
  const booting = bootService('boot-test', { ...config(), NATS_URL: `nats://127.0.0.1:${natsPort}`, PORT: httpPort }, async () => ({
    ready: () => true,
    routes: (app) => app.get('/hello', (_req, res) => res.json({ hi: 1 })),
  }));
  await waitFor(async () => (await fetch(`${base}/livez`).catch(() => undefined))?.status === 200, { what: '/livez while NATS is down' });
  const notReady = await fetch(`${base}/readyz`);
  assert.equal(notReady.status, 503);
  const early = await fetch(`${base}/hello`);
  assert.equal(early.status, 503, 'a route before the wiring: starting, not a 404');
  assert.equal(((await early.json()) as { error: { code: string } }).error.code, 'starting');
  assert.equal(early.headers.get('retry-after'), '1');

  const late = await startNatsServer({ port: natsPort });
  try {
    const svc = await booting;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.deepEqual(await (await fetch(`${base}/hello`)).json(), { hi: 1 });
    await svc.stop();
  } finally {
    await late.stop();
  }
});
