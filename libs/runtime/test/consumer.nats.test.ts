import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { SpanKind } from '@opentelemetry/api';
import { CeHeaders, Streams, ceType } from '@sagamesh/contracts';
import { type ConsumerHandle, createLogger, JetStreamPublisher, createMetrics, declarePlatformStreams, ensureStreams, type Handler, type JetStreamClient, type JetStreamManager, type NatsConnection, PoisonMessageError, publishEvent, runConsumer, type RunConsumerOptions, type ServiceMetrics, withSpan } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, startTestTracing, type TestTracing, waitFor } from '@sagamesh/testing';

const STREAM = 'TEST_WORK';
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let tracing: TestTracing;
const log = createLogger('runtime-test', 'silent');
const handles: ConsumerHandle[] = [];

before(async () => {
  tracing = startTestTracing();
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await declarePlatformStreams(jsm);
  await ensureStreams(jsm, [{ name: STREAM, subjects: ['work.>'], retention: 'workqueue' }]);
});
after(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await nc.close();
  await server.stop();
  await tracing.stop();
});

function publish(subject: string, data: unknown, id?: string) {
  return publishEvent(js, subject, { type: ceType('test', 'work'), source: 'runtime-test', data, correlationId: 'c-1', ...(id ? { id } : {}) });
}

function start(name: string, handler: Handler, extra: Partial<RunConsumerOptions> = {}): { handle: ConsumerHandle; metrics: ServiceMetrics } {
  const metrics = extra.metrics ?? createMetrics('runtime-test');
  const handle = runConsumer({
    nc,
    js,
    jsm,
    stream: STREAM,
    consumer: { durable: name, filterSubjects: [`work.${name}.>`], ackWaitMs: 5000 },
    concurrency: 4,
    service: 'runtime-test',
    log,
    metrics,
    handler,
    retryBackoff: { initialMs: 20, maxMs: 100 },
    restartBackoff: { initialMs: 50, maxMs: 200 },
    ...extra,
  });
  handles.push(handle);
  return { handle, metrics };
}

async function metricValue(metrics: ServiceMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values ?? []).find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

/** Nothing left for the consumer: no pending and no unacked message, so nothing can be redelivered. */
async function settled(durable: string): Promise<boolean> {
  await nc.flush();
  const info = await jsm.consumers.info(STREAM, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

test('acks handled messages, reports ready, counts them', async () => {
  const seen: unknown[] = [];
  const { handle, metrics } = start('ack', async (m) => {
    seen.push(m.json());
    return 'ack';
  });
  await waitFor(() => handle.ready(), { what: 'consumer ready' });
  for (let i = 0; i < 3; i++) await publish(`work.ack.${i}`, { i });
  await waitFor(() => seen.length === 3, { what: '3 messages handled' });
  await waitFor(() => settled('ack'), { what: 'all acked' });
  assert.deepEqual(seen.map((d) => (d as { i: number }).i).sort(), [0, 1, 2]);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'ack', outcome: 'ack' }), 3);
  const text = await metrics.registry.metrics();
  assert.match(text, /sagamesh_message_processing_duration_seconds_count\{service="runtime-test",consumer="ack"\} 3/);
  assert.match(text, /sagamesh_consumer_pending\{stream="TEST_WORK",consumer="ack"\} \d+/);
});

test('a throwing handler is nak-ed and the redelivery succeeds', async () => {
  const deliveries: number[] = [];
  const { metrics } = start('retry', async (_m, ctx) => {
    deliveries.push(ctx.deliveryCount);
    if (ctx.deliveryCount === 1) throw new Error('transient');
    return 'ack';
  });
  await publish('work.retry.1', {});
  await waitFor(() => deliveries.length === 2, { what: 'the redelivery' });
  await waitFor(() => settled('retry'), { what: 'acked after retry' });
  assert.deepEqual(deliveries, [1, 2]);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'retry', outcome: 'nak' }), 1);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'retry', outcome: 'ack' }), 1);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_redelivered_total', { consumer: 'retry' }), 1);
});

test('never more than `concurrency` handlers run at once', async () => {
  let active = 0;
  let maxActive = 0;
  let done = 0;
  start(
    'bounded',
    async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 15));
      active--;
      done++;
      return 'ack';
    },
    { concurrency: 3 },
  );
  await Promise.all(Array.from({ length: 24 }, (_, i) => publish(`work.bounded.${i}`, { i })));
  await waitFor(() => done === 24, { what: '24 messages handled', timeoutMs: 20_000 });
  assert.equal(maxActive, 3);
});

async function deadLetter(subject: string) {
  return jsm.streams.getMessage(Streams.deadLetters.name, { last_by_subj: `dlq.${subject}` });
}

test('a poison message is dead-lettered with its reason and never redelivered', async () => {
  let deliveries = 0;
  start('poison', async () => {
    deliveries++;
    throw new PoisonMessageError('bad JSON in sagamesh.test.work.v1 data: Unexpected end');
  });
  await publish('work.poison.1', { x: 1 }, 'poison-id-1');
  const dl = await waitFor(() => deadLetter('work.poison.1').catch(() => null), { what: 'the dead letter' });
  assert.equal(dl.header.get(CeHeaders.deadLetterReason), 'poison: bad JSON in sagamesh.test.work.v1 data: Unexpected end');
  assert.equal(dl.header.get(CeHeaders.deadLetterStream), STREAM);
  assert.equal(dl.header.get(CeHeaders.deadLetterConsumer), 'poison');
  assert.equal(dl.header.get(CeHeaders.id), 'poison-id-1', 'original headers kept');
  assert.deepEqual(dl.json(), { x: 1 });
  await waitFor(() => settled('poison'), { what: 'the poison message terminated' });
  assert.equal(deliveries, 1);
});

test('a message failing on every delivery is dead-lettered on the last one and not redelivered', async () => {
  const deliveries: number[] = [];
  const { metrics } = start(
    'failing',
    async (_m, ctx) => {
      deliveries.push(ctx.deliveryCount);
      throw new Error(`boom ${ctx.deliveryCount}`);
    },
    { consumer: { durable: 'failing', filterSubjects: ['work.failing.>'], maxDeliver: 3 } },
  );
  await publish('work.failing.1', { y: 2 });
  const dl = await waitFor(() => deadLetter('work.failing.1').catch(() => null), { what: 'the dead letter' });
  assert.equal(dl.header.get(CeHeaders.deadLetterReason), 'failed on all 3 deliveries, last error: boom 3');
  await waitFor(() => settled('failing'), { what: 'terminated' });
  assert.deepEqual(deliveries, [1, 2, 3]);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'failing', outcome: 'dead_letter' }), 1);
  assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'failing', outcome: 'nak' }), 2);
});

test('the consume loop recreates its consumer after it is deleted under it', async () => {
  const seen: string[] = [];
  const { handle } = start('phoenix', async (m) => {
    seen.push(m.subject);
    return 'ack';
  });
  await publish('work.phoenix.1', {});
  await waitFor(() => seen.length === 1, { what: 'first message' });
  await waitFor(() => settled('phoenix'), { what: 'first acked' });
  await jsm.consumers.delete(STREAM, 'phoenix');
  await waitFor(() => jsm.consumers.info(STREAM, 'phoenix').then(() => true, () => false), { what: 'consumer recreated' });
  await waitFor(() => handle.ready(), { what: 'consuming again' });
  await publish('work.phoenix.2', {});
  await waitFor(() => seen.length === 2, { what: 'second message after the restart' });
  assert.deepEqual(seen, ['work.phoenix.1', 'work.phoenix.2']);
});

test('stop() waits for in-flight handlers and aborts their signal', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let started = false;
  let finished = false;
  let sawAbort = false;
  const { handle } = start('drain', async (_m, ctx) => {
    started = true;
    await gate;
    sawAbort = ctx.signal.aborted;
    finished = true;
    return 'ack';
  });
  await publish('work.drain.1', {});
  await waitFor(() => started, { what: 'handler started' });
  let stopped = false;
  const stopping = handle.stop().then(() => {
    stopped = true;
  });
  for (let i = 0; i < 20; i++) await tick();
  await nc.flush();
  assert.equal(stopped, false, 'stop() returned while a handler was running');
  assert.equal(handle.ready(), false);
  release();
  await stopping;
  assert.equal(finished, true);
  assert.equal(sawAbort, true);
  await waitFor(() => settled('drain'), { what: 'the in-flight message acked' });
});

test('a handler that stop() interrupts is logged as interrupted, not as failed, and its message comes again', async () => {
  const lines: { level: string; msg: string }[] = [];
  const captured = createLogger('runtime-test', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  let started = false;
  const { handle } = start(
    'interrupted',
    async (_m, ctx) => {
      started = true;
      await sleep(60_000, undefined, { signal: ctx.signal });
      return 'ack';
    },
    { log: captured },
  );
  await publish('work.interrupted.1', {});
  await waitFor(() => started, { what: 'handler started' });
  await handle.stop();
  assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'handler interrupted by the stop; redelivering'), JSON.stringify(lines));
  assert.deepEqual(lines.filter((l) => l.level === 'warn' || l.level === 'error'), []);
  const deliveries: number[] = [];
  start('interrupted', async (m) => {
    deliveries.push(m.info.deliveryCount);
    return 'ack';
  });
  await waitFor(() => deliveries.length === 1, { what: 'the interrupted message delivered again' });
  assert.deepEqual(deliveries, [2]);
});

test('the handler runs in a CONSUMER span continuing the publisher trace', async () => {
  let handled = false;
  start('traced', async () => {
    handled = true;
    return 'ack';
  });
  const traceId = await withSpan('publish-side', { kind: SpanKind.PRODUCER }, async (span) => {
    await publish('work.traced.1', {});
    return span.spanContext().traceId;
  });
  await waitFor(() => handled, { what: 'handled' });
  const span = await waitFor(() => tracing.exporter.getFinishedSpans().find((s) => s.name === 'process traced'), { what: 'consumer span' });
  assert.equal(span.kind, SpanKind.CONSUMER);
  assert.equal(span.spanContext().traceId, traceId);
  assert.equal(span.attributes['messaging.destination.name'], 'work.traced.1');
});

test('a message whose dead letter cannot be published on its last delivery is dead-lettered from the max-deliveries advisory once DEAD_LETTERS is back', async () => {
  await jsm.streams.delete(Streams.deadLetters.name);
  try {
    const { handle, metrics } = start(
      'rescue',
      async () => {
        throw new Error('always failing');
      },
      { consumer: { durable: 'rescue', filterSubjects: ['work.rescue.>'], ackWaitMs: 5000, maxDeliver: 2 } },
    );
    await waitFor(() => handle.ready(), { what: 'consumer ready' });
    await publish('work.rescue.1', { n: 1 });
    // The first delivery is nak'd; the last one cannot publish its dead letter (no DEAD_LETTERS), so it is nak'd too,
    // and JetStream will not deliver it again.
    await waitFor(async () => (await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'rescue', outcome: 'nak' })) >= 2, { what: 'both deliveries nak-ed', timeoutMs: 15_000 });
    await declarePlatformStreams(jsm);
    await waitFor(async () => (await jsm.streams.info(Streams.deadLetters.name)).state.messages === 1, { what: 'the rescued dead letter', timeoutMs: 15_000 });
    const dl = await jsm.streams.getMessage(Streams.deadLetters.name, { last_by_subj: 'dlq.work.rescue.1' });
    assert.match(dl!.header.get('sagamesh-dead-letter-reason'), /reached MaxDeliver \(2 deliveries\) without a dead letter/);
    assert.deepEqual(dl!.json(), { n: 1 });
    assert.equal(await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'rescue', outcome: 'dead_letter' }), 1);
  } finally {
    await declarePlatformStreams(jsm);
  }
});

test('a handler the bus cannot serve for longer than the redeliveries last is tried again in place: the message ends acked, not dead-lettered', async () => {
  const deadBefore = (await jsm.streams.info(Streams.deadLetters.name)).state.messages;
  const store = new JetStreamPublisher(nc, { timeoutMs: 1000 });
  let calls = 0;
  const deliveries: number[] = [];
  const { handle, metrics } = start(
    'outage',
    async (_m, ctx) => {
      deliveries.push(ctx.deliveryCount);
      // The stream it writes to is away (as an R1 stream whose server is drained) for more tries than maxDeliver allows
      // deliveries: the publish fails with what nats.js really throws then, until the stream is back.
      if (++calls === 5) await jsm.streams.add({ name: 'OUTAGE_STORE', subjects: ['outage-store.>'] });
      await store.publish('outage-store.x', 'x');
      return 'ack';
    },
    { consumer: { durable: 'outage', filterSubjects: ['work.outage.>'], ackWaitMs: 5000, maxDeliver: 2 } },
  );
  try {
    await waitFor(() => handle.ready(), { what: 'consumer ready' });
    await publish('work.outage.1', { n: 1 });
    await waitFor(async () => (await metricValue(metrics, 'sagamesh_messages_handled_total', { consumer: 'outage', outcome: 'ack' })) === 1, { what: 'acked after the outage', timeoutMs: 30_000 });
    assert.equal(calls, 5);
    assert.deepEqual([...new Set(deliveries)], [1], 'all on its first delivery');
    assert.equal((await jsm.streams.info(Streams.deadLetters.name)).state.messages, deadBefore, 'nothing dead-lettered');
  } finally {
    store.close();
    await jsm.streams.delete('OUTAGE_STORE').catch(() => undefined);
  }
});
