/**
 * One order, one trace: with the real OpenTelemetry SDK (in-memory exporter) and a real nats-server,
 * the gateway, orders, orchestrator, the three participants and notifications run in-process; one
 * order placed over HTTP yields a single trace with spans from gateway, orders, orchestrator,
 * inventory, payments and shipping, rooted at the gateway, and every span's parent is in the trace.
 * Context crosses HTTP (traceparent header), JetStream (CloudEvents headers) and the engine's stored
 * traceparent (a run's first command).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { Consumers, OrdersPaths } from '@sagamesh/contracts';
import { startNatsServer, startTestTracing, type TestTracing } from '@sagamesh/testing';
import { GatewayClient } from '../../scripts/lib/client.ts';
import { type InProcessPlatform, startInProcessPlatform } from '../in-process-platform.ts';

const API_KEY = 'trace-test-key-0123456789';
let nats: Awaited<ReturnType<typeof startNatsServer>>;
let tracing: TestTracing;
let platform: InProcessPlatform | undefined;
let api: GatewayClient;

before(async () => {
  tracing = startTestTracing();
  nats = await startNatsServer();
  platform = await startInProcessPlatform(nats.url, API_KEY);
  api = new GatewayClient(platform.gatewayUrl, API_KEY);
});

after(async () => {
  await platform?.stop();
  await nats?.stop();
  await tracing?.stop();
});

const ROUTE = 'http.route';
const CONSUMER_GROUP = 'messaging.consumer.group.name';

/** Which service made a span: in-process they share one tracer provider, so read it from the span itself. */
function serviceOf(s: ReadableSpan): string {
  const route = s.attributes[ROUTE];
  if (s.kind === SpanKind.SERVER && typeof route === 'string') {
    if (route.startsWith('/api/') || route.startsWith('/admin/')) return 'gateway';
    if (route === OrdersPaths.place || route.startsWith(`${OrdersPaths.place}/`)) return 'orders';
  }
  const group = s.attributes[CONSUMER_GROUP];
  if (s.kind === SpanKind.CONSUMER && typeof group === 'string') {
    const byConsumer: Record<string, string> = {
      [Consumers.engineReplies]: 'orchestrator',
      [Consumers.ordersProjector]: 'orders',
      [Consumers.ordersSagaEvents]: 'orders',
      [Consumers.inventorySagaEvents]: 'inventory',
      [Consumers.notifications]: 'notifications',
      [Consumers.participant('inventory')]: 'inventory',
      [Consumers.participant('payments')]: 'payments',
      [Consumers.participant('shipping')]: 'shipping',
    };
    return byConsumer[group] ?? `consumer ${group}`;
  }
  // The gateway's upstream calls are named after them; under a call to orders, the HTTP instrumentation's CLIENT span
  // (the only outgoing HTTP here).
  if ((s.kind === SpanKind.CLIENT || s.kind === SpanKind.INTERNAL) && / orders$|^request /.test(s.name)) return 'gateway';
  if (s.kind === SpanKind.CLIENT && typeof s.attributes['url.full'] === 'string') return 'gateway';
  return `unknown (${s.name})`;
}

function tree(spans: ReadableSpan[], root: ReadableSpan): string[] {
  const lines: string[] = [];
  const walk = (s: ReadableSpan, depth: number) => {
    lines.push(`${'  '.repeat(depth)}${s.name} [${SpanKind[s.kind]}] ${serviceOf(s)}`);
    for (const c of spans.filter((x) => x.parentSpanContext?.spanId === s.spanContext().spanId)) walk(c, depth + 1);
  };
  walk(root, 0);
  return lines;
}

test('one order yields one trace through gateway, orders, orchestrator, inventory, payments and shipping', async (t) => {
  const orderId = await api.placeOrder({ customerId: 'c-trace', items: [{ sku: 'sku-1', quantity: 1 }] });
  const views = await api.waitForOrders([orderId], 30_000);
  assert.equal(views.get(orderId)?.status, 'CONFIRMED');

  // The POST's SERVER span at the gateway is the root; later spans (choreography) may end a moment after.
  const rootOf = () =>
    tracing.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.attributes[ROUTE] === '/api/orders' && s.attributes['http.request.method'] === 'POST');
  const root = rootOf();
  assert.ok(root, 'the gateway made a SERVER span for POST /api/orders');
  const traceId = root.spanContext().traceId;
  const wanted = ['gateway', 'orders', 'orchestrator', 'inventory', 'payments', 'shipping'];
  let spans: ReadableSpan[] = [];
  for (let i = 0; i < 50; i++) {
    spans = tracing.exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    if (wanted.every((w) => spans.some((s) => serviceOf(s) === w))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const line of tree(spans, root)) t.diagnostic(line);

  const services = new Set(spans.map(serviceOf));
  for (const w of wanted) assert.ok(services.has(w), `no span from ${w} in the order's trace (services seen: ${[...services].join(', ')})`);

  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const roots = spans.filter((s) => !s.parentSpanContext);
  assert.deepEqual(roots.map((s) => s.name), [root.name], 'one root, the gateway’s POST /api/orders');
  assert.equal(roots[0], root);
  const orphans = spans.filter((s) => s.parentSpanContext && !ids.has(s.parentSpanContext.spanId));
  assert.deepEqual(orphans.map((s) => `${s.name} (${serviceOf(s)})`), [], 'every span’s parent is in the trace');

  // Causality, not just membership: each participant's command span descends from the orders span.
  const ordersSpan = spans.find((s) => serviceOf(s) === 'orders' && s.kind === SpanKind.SERVER);
  assert.ok(ordersSpan, 'orders made a SERVER span');
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const ancestors = (s: ReadableSpan) => {
    const out: ReadableSpan[] = [];
    for (let p = s.parentSpanContext && byId.get(s.parentSpanContext.spanId); p; p = p.parentSpanContext && byId.get(p.parentSpanContext.spanId)) out.push(p);
    return out;
  };
  for (const participant of ['inventory', 'payments', 'shipping']) {
    const command = spans.find((s) => s.attributes[CONSUMER_GROUP] === Consumers.participant(participant));
    assert.ok(command, `${participant} handled a command in the trace`);
    assert.ok(ancestors(command).includes(ordersSpan), `${participant}'s command span descends from the orders SERVER span`);
  }
  // The engine moves the saga on from the replies: payments' command follows inventory's reply.
  const payment = spans.find((s) => s.attributes[CONSUMER_GROUP] === Consumers.participant('payments'))!;
  assert.ok(ancestors(payment).some((s) => serviceOf(s) === 'orchestrator'), 'payments.charge was sent while the orchestrator handled a reply');
});
