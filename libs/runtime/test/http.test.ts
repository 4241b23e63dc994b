import { get } from 'node:http';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { createHttpServer, createLogger, createMetrics, HttpError, type HttpServer, KEEP_ALIVE } from '@sagamesh/runtime';
import { startTestTracing, type TestTracing, waitFor } from '@sagamesh/testing';

let ready = false;
let server: HttpServer;
let base: string;
let tracing: TestTracing;

before(async () => {
  tracing = startTestTracing();
  server = createHttpServer({
    service: 'demo',
    host: '127.0.0.1',
    port: 0,
    log: createLogger('demo', 'silent'),
    metrics: createMetrics('demo'),
    ready: () => ready,
    routes: (app) => {
      app.get('/api/orders/:orderId', (req, res) => {
        res.json({ orderId: req.params.orderId });
      });
      app.get('/api/teapot', () => {
        throw new HttpError(418, 'teapot', 'I am a teapot');
      });
      app.get('/api/boom', async () => {
        throw new Error('secret internals');
      });
    },
  });
  base = `http://127.0.0.1:${await server.listen()}`;
});
after(async () => {
  await server.close();
  await tracing.stop();
});

test('/livez is 200 while the process runs', async () => {
  const res = await fetch(`${base}/livez`);
  assert.equal(res.status, 200);
});

test('/readyz follows ready()', async () => {
  ready = false;
  const down = await fetch(`${base}/readyz`);
  assert.equal(down.status, 503);
  assert.equal(((await down.json()) as { error: { code: string } }).error.code, 'not_ready');
  ready = true;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
});

test('/metrics labels requests with the route pattern, never the raw path', async () => {
  await fetch(`${base}/api/orders/o-123`);
  await fetch(`${base}/api/orders/o-456`);
  await fetch(`${base}/nowhere/at/all`);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /sagamesh_http_requests_total\{service="demo",route="\/api\/orders\/:orderId",method="GET",code="200"\} 2/);
  assert.match(text, /sagamesh_http_requests_total\{service="demo",route="unmatched",method="GET",code="404"\} 1/);
  assert.doesNotMatch(text, /o-123/);
  assert.match(text, /sagamesh_http_request_duration_seconds_bucket\{le="[^"]+",service="demo",route="\/api\/orders\/:orderId",method="GET"\}/);
  assert.match(text, /^process_cpu_user_seconds_total /m);
});

test('keeps an idle connection open for KEEP_ALIVE.serverIdleMs and says so, past the clients\' pool timeout', async () => {
  const header = await new Promise<string | string[] | undefined>((resolve, reject) =>
    get(`${base}/livez`, (res) => (res.resume(), resolve(res.headers['keep-alive']))).on('error', reject),
  );
  assert.equal(header, `timeout=${KEEP_ALIVE.serverIdleMs / 1000}`);
  assert.equal(KEEP_ALIVE.serverIdleMs, 65_000, "Node's default (5 s) is what made the gateway reuse closed sockets");
  assert.ok(KEEP_ALIVE.clientIdleMs < KEEP_ALIVE.serverIdleMs);
});

test('an unknown route is a JSON 404', async () => {
  const res = await fetch(`${base}/nope`, { method: 'POST' });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: { code: 'not_found', message: 'no route for POST /nope' } });
});

test('HttpError becomes its JSON error; an unexpected error is a 500 that hides its message', async () => {
  const teapot = await fetch(`${base}/api/teapot`);
  assert.equal(teapot.status, 418);
  assert.deepEqual(await teapot.json(), { error: { code: 'teapot', message: 'I am a teapot' } });
  const boom = await fetch(`${base}/api/boom`);
  assert.equal(boom.status, 500);
  assert.deepEqual(await boom.json(), { error: { code: 'internal', message: 'internal error' } });
});

test('a request becomes a SERVER span, child of the incoming traceparent', async () => {
  tracing.exporter.reset();
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await fetch(`${base}/api/orders/o-9`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  const span = await waitFor(() => tracing.exporter.getFinishedSpans().find((s) => s.name === 'GET /api/orders/:orderId'), {
    what: 'the server span',
  });
  assert.equal(span.kind, SpanKind.SERVER);
  assert.equal(span.spanContext().traceId, traceId);
  assert.equal(span.parentSpanContext?.spanId, '00f067aa0ba902b7');
  assert.equal(span.attributes['http.response.status_code'], 200);
  assert.equal(span.attributes['http.route'], '/api/orders/:orderId');
});

test('probes and scrapes are not traced; a 5xx span is an ERROR; an unmatched path gets no route', async () => {
  tracing.exporter.reset();
  await (await fetch(`${base}/livez`)).text();
  await (await fetch(`${base}/metrics?x=1`)).text();
  await (await fetch(`${base}/api/boom`)).text();
  await (await fetch(`${base}/nowhere/o-1`)).text();
  const boom = await waitFor(() => tracing.exporter.getFinishedSpans().find((s) => s.name === 'GET /api/boom'), { what: 'the 500 span' });
  assert.equal(boom.status.code, SpanStatusCode.ERROR);
  const spans = await waitFor(() => (tracing.exporter.getFinishedSpans().length >= 2 ? tracing.exporter.getFinishedSpans() : undefined), { what: 'both spans' });
  assert.deepEqual(spans.map((s) => s.name).sort(), ['GET', 'GET /api/boom'], 'no span for /livez or /metrics; the unmatched one is just the method');
  assert.equal(spans.find((s) => s.name === 'GET')?.attributes['http.route'], undefined);
});

test('close() with a drain delay keeps answering (readiness failing) until the delay passes, then refuses', async () => {
  const draining = createHttpServer({
    service: 'drain',
    host: '127.0.0.1',
    port: 0,
    log: createLogger('drain', 'silent'),
    metrics: createMetrics('drain'),
    ready: () => true,
    drainDelayMs: 400,
  });
  const url = `http://127.0.0.1:${await draining.listen()}`;
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const closed = draining.close();
  let done = false;
  void closed.then(() => (done = true));
  const during = await fetch(`${url}/readyz`, { headers: { connection: 'close' } });
  assert.equal(during.status, 503, 'readiness fails while draining');
  assert.equal(((await during.json()) as { error: { message: string } }).error.message, 'shutting down');
  const live = await fetch(`${url}/livez`);
  assert.equal(live.status, 200, 'still answering during the delay');
  assert.equal(live.headers.get('connection'), 'close', 'and closing each connection after its answer');
  assert.equal(done, false);
  await closed;
  await assert.rejects(fetch(`${url}/livez`), 'refused once closed');
});

test('past maxInFlight a request is answered 503 overloaded with Retry-After at once; probes still answer; the cap frees up', async () => {
  const metrics = createMetrics('capped');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const capped = createHttpServer({
    service: 'capped',
    host: '127.0.0.1',
    port: 0,
    log: createLogger('capped', 'silent'),
    metrics,
    ready: () => true,
    maxInFlight: 2,
    routes: (app) => app.get('/api/slow', async (_req, res) => {
      await gate;
      res.json({ ok: true });
    }),
  });
  const url = `http://127.0.0.1:${await capped.listen()}`;
  try {
    const slow = [fetch(`${url}/api/slow`), fetch(`${url}/api/slow`)];
    // Give both slow requests time to be admitted (loopback: far less than this).
    await new Promise((r) => setTimeout(r, 200));
    const shed = await fetch(`${url}/api/slow`);
    assert.equal(shed.status, 503);
    assert.equal(shed.headers.get('retry-after'), '1');
    assert.equal(((await shed.json()) as { error: { code: string } }).error.code, 'overloaded');
    assert.equal((await fetch(`${url}/livez`)).status, 200, 'probes are not counted against the cap');
    release();
    assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
    assert.equal((await fetch(`${url}/api/slow`)).status, 200, 'admitted again once the others finished');
    assert.match(await metrics.registry.metrics(), /sagamesh_requests_rejected_total\{service="capped",reason="overload"\} 1/);
  } finally {
    release();
    await capped.close();
  }
});
