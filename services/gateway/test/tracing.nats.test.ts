import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { loadConfig, SpanKind } from '@sagamesh/runtime';
import { startNatsServer, startTestTracing } from '@sagamesh/testing';
import { GatewayConfigSchema, start } from '../src/index.ts';

const KEY = 'trace-test-key-0123456789';

test('the order request keeps its trace: traceparent reaches orders, under the gateway SERVER span', async () => {
  const tracing = startTestTracing();
  const nats = await startNatsServer();
  const seen: (string | undefined)[] = [];
  const orders = createServer((req, res) => {
    seen.push(req.headers.traceparent as string | undefined);
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    // Placed under the id the gateway gives it, as orders does.
    req.on('end', () => res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ orderId: (JSON.parse(body) as { orderId: string }).orderId, status: 'PENDING' })));
  });
  await new Promise<void>((r) => orders.listen(0, '127.0.0.1', r));
  const gw = await start(
    loadConfig(GatewayConfigSchema, {
      PORT: '0',
      HOST: '127.0.0.1',
      NATS_URL: nats.url,
      ORDERS_URL: `http://127.0.0.1:${(orders.address() as AddressInfo).port}`,
      API_KEYS: KEY,
      LOG_LEVEL: 'silent',
    }),
  );
  try {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`http://127.0.0.1:${gw.port}/api/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1 }] }),
    });
    assert.equal(res.status, 202);
    assert.equal(seen.length, 1);
    assert.match(seen[0] ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    const spans = tracing.exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER && s.name === 'POST /api/orders');
    // The call to orders (breaker, retries) and, under it, the HTTP instrumentation's CLIENT span of the attempt.
    const call = spans.find((s) => s.kind === SpanKind.INTERNAL && s.name === 'POST orders');
    const client = spans.find((s) => s.kind === SpanKind.CLIENT && s.parentSpanContext?.spanId === call?.spanContext().spanId);
    assert.ok(server && call && client, `spans: ${spans.map((s) => `${s.name} [${SpanKind[s.kind]}]`).join(', ')}`);
    assert.equal(server.spanContext().traceId, traceId);
    assert.equal(server.parentSpanContext?.spanId, '00f067aa0ba902b7');
    assert.equal(call.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.equal(client.attributes['http.response.status_code'], 202);
    // orders' own SERVER span will be a child of the gateway's CLIENT span.
    assert.equal(seen[0]!.split('-')[2], client.spanContext().spanId);
  } finally {
    await gw.stop();
    await new Promise<void>((r) => orders.close(() => r()));
    await nats.stop();
    await tracing.stop();
  }
});
