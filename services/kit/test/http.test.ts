import { get } from 'node:http';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { HttpError, KEEP_ALIVE, createHttpServer, createLogger, createMetrics, type HttpServer } from '@sagamesh/kit';
import { startTestTracing, waitFor, type TestTracing } from '@sagamesh/kit/testing';

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
});
