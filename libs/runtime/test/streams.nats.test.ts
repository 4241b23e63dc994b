import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { BucketLimits, Buckets, DEFAULT_STORE_MIB, DUPLICATE_WINDOW_MS, isStoreFull, maxBytesOf, SagaEndSubjects, StreamLimits, Streams, Subjects } from '@sagamesh/contracts';
import { declarePlatformStreams, ensureKv, ensureStreams, StreamConfigError } from '@sagamesh/runtime';
import { freePort, startNatsServer, useNatsServer } from '@sagamesh/testing';

const nats = useNatsServer();

/** Counts the stream create/update API requests seen on the server while `fn` runs. */
async function streamWrites(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const watcher = await connect({ servers: nats.server.url });
  const sub = watcher.subscribe('$JS.API.STREAM.>', { callback: (_e, m) => {
    if (/^\$JS\.API\.STREAM\.(CREATE|UPDATE)\./.test(m.subject)) seen.push(m.subject);
  } });
  await watcher.flush();
  await fn();
  await nats.nc.flush();
  await watcher.flush();
  sub.unsubscribe();
  await watcher.close();
  return seen;
}

test('ensureStreams creates, then a second identical call writes nothing', async () => {
  const spec = { name: 'DEMO', subjects: ['demo.a.>'], retention: 'workqueue' as const, maxAgeMs: 3_600_000 };
  const first = await streamWrites(() => ensureStreams(nats.jsm, [spec]));
  assert.deepEqual(first, ['$JS.API.STREAM.CREATE.DEMO']);
  const second = await streamWrites(() => ensureStreams(nats.jsm, [spec]));
  assert.deepEqual(second, []);
  const { config } = await nats.jsm.streams.info('DEMO');
  assert.equal(config.retention, RetentionPolicy.Workqueue);
  assert.equal(config.max_age, 3_600_000 * 1e6);
  assert.equal(config.duplicate_window, DUPLICATE_WINDOW_MS * 1e6);
});

test('ensureStreams updates a changed subject list in place, keeping the messages', async () => {
  await ensureStreams(nats.jsm, [{ name: 'DEMO2', subjects: ['demo2.a.>'] }]);
  await nats.js.publish('demo2.a.1', 'kept');
  const writes = await streamWrites(() => ensureStreams(nats.jsm, [{ name: 'DEMO2', subjects: ['demo2.a.>', 'demo2.b.>'] }]));
  assert.deepEqual(writes, ['$JS.API.STREAM.UPDATE.DEMO2']);
  const info = await nats.jsm.streams.info('DEMO2');
  assert.deepEqual([...info.config.subjects].sort(), ['demo2.a.>', 'demo2.b.>']);
  assert.equal(info.state.messages, 1);
  await nats.js.publish('demo2.b.1', 'new subject accepted');
});

test('ensureStreams refuses a retention change with a clear error', async () => {
  await ensureStreams(nats.jsm, [{ name: 'DEMO3', subjects: ['demo3.>'] }]);
  await assert.rejects(ensureStreams(nats.jsm, [{ name: 'DEMO3', subjects: ['demo3.>'], retention: 'workqueue' }]), (err: unknown) => {
    assert.ok(err instanceof StreamConfigError);
    assert.match(err.message, /stream DEMO3 exists with retention=limits .* delete the stream to recreate it/);
    return true;
  });
});

test('declarePlatformStreams declares every platform stream with its settings, idempotently', async () => {
  await declarePlatformStreams(nats.jsm);
  await declarePlatformStreams(nats.jsm);
  const day = 24 * 3600 * 1e9;
  const mib = (key: keyof typeof Streams) => maxBytesOf(StreamLimits[key], DEFAULT_STORE_MIB);
  type Limits = { retention: string; max_age: number; max_bytes: number; discard: string; max_msgs_per_subject: number };
  const expected: Record<string, Limits> = {
    [Streams.commands.name]: { retention: 'workqueue', max_age: day, max_bytes: mib('commands'), discard: 'new', max_msgs_per_subject: -1 },
    [Streams.replies.name]: { retention: 'workqueue', max_age: day, max_bytes: mib('replies'), discard: 'new', max_msgs_per_subject: -1 },
    [Streams.sagaEvents.name]: { retention: 'limits', max_age: day, max_bytes: mib('sagaEvents'), discard: 'old', max_msgs_per_subject: 1 },
    [Streams.domainEvents.name]: { retention: 'limits', max_age: day, max_bytes: mib('domainEvents'), discard: 'old', max_msgs_per_subject: -1 },
    [Streams.orders.name]: { retention: 'limits', max_age: 0, max_bytes: mib('orders'), discard: 'new', max_msgs_per_subject: -1 },
    [Streams.deadLetters.name]: { retention: 'limits', max_age: 7 * day, max_bytes: mib('deadLetters'), discard: 'new', max_msgs_per_subject: -1 },
  };
  for (const s of Object.values(Streams)) {
    const { config } = await nats.jsm.streams.info(s.name);
    assert.deepEqual([...config.subjects], [...s.subjects], s.name);
    const { retention, max_age, max_bytes, discard, max_msgs_per_subject } = config;
    assert.deepEqual({ retention, max_age, max_bytes, discard, max_msgs_per_subject }, expected[s.name], s.name);
    assert.equal(config.storage, 'file', s.name);
    assert.equal(config.duplicate_window, DUPLICATE_WINDOW_MS * 1e6, s.name);
  }
});

test('an existing deployment gets the limits on its next start: streams and buckets updated in place, nothing stored is lost', async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    // As the previous release declared them: no byte limits, every progress event of every origin kept.
    await ensureStreams(jsm, [
      { ...Streams.orders, retention: 'limits' },
      { ...Streams.sagaEvents, subjects: [Subjects.allSagaEvents, SagaEndSubjects.allEnded], retention: 'limits', maxAgeMs: 24 * 3_600_000 },
    ]);
    for (let i = 0; i < 5; i++) await js.publish(Subjects.orderStream(`o-${i}`), 'placed');
    for (const event of ['started', 'step_started', 'succeeded']) await js.publish(Subjects.sagaEvent('order', 'r-1'), event);
    await js.publish(SagaEndSubjects.ended('order', 'r-1'), 'succeeded');
    const old = await new Kvm(js).create(Buckets.payments, { history: 1 });
    await old.put('r-1.charge', 'charged');
    assert.equal((await jsm.streams.info(`KV_${Buckets.payments}`)).config.max_bytes, -1);

    // The next start, with a small budget.
    await declarePlatformStreams(jsm, 1, undefined, 8);
    const kv = await ensureKv(js, Buckets.payments, { history: 1, storeMiB: 8 });

    const orders = await jsm.streams.info(Streams.orders.name);
    assert.equal(orders.config.max_bytes, maxBytesOf(StreamLimits.orders, 8));
    assert.equal(orders.config.discard, DiscardPolicy.New);
    assert.equal(orders.state.messages, 5, 'the event store keeps every event');
    const events = await jsm.streams.info(Streams.sagaEvents.name, { subjects_filter: '>' });
    assert.equal(events.config.max_msgs_per_subject, 1);
    // The per-subject limit applies to what is stored too: the latest progress event and the end remain.
    assert.deepEqual(events.state.subjects, { [Subjects.sagaEvent('order', 'r-1')]: 1, [SagaEndSubjects.ended('order', 'r-1')]: 1 });
    assert.equal((await jsm.streams.getMessage(Streams.sagaEvents.name, { last_by_subj: Subjects.sagaEvent('order', 'r-1') }))?.string(), 'succeeded');
    // From now on an order run's progress is not kept (isProgressDurable); a k8s run's is.
    assert.deepEqual([...events.config.subjects], [...Streams.sagaEvents.subjects]);
    await assert.rejects(js.publish(Subjects.sagaEvent('order', 'r-2'), 'started'), 'no stream takes an order run\'s progress any more');
    assert.equal((await js.publish(Subjects.sagaEvent('k8s', 'r-3'), 'started')).stream, Streams.sagaEvents.name);
    assert.equal((await jsm.streams.info(`KV_${Buckets.payments}`)).config.max_bytes, maxBytesOf(BucketLimits[Buckets.payments], 8));
    assert.equal((await kv.get('r-1.charge'))?.string(), 'charged');
  } finally {
    await nc.close();
    await server.stop();
  }
});

test('a stream that discards new refuses a write past its limit with an error isStoreFull recognises', async () => {
  await ensureStreams(nats.jsm, [{ name: 'FULL', subjects: ['full.>'], maxBytes: 2000, discard: 'new' }]);
  let refused: unknown;
  for (let i = 0; i < 50 && !refused; i++) await nats.js.publish(`full.${i}`, 'x'.repeat(200)).catch((err: unknown) => (refused = err));
  assert.ok(isStoreFull(refused), `refused with ${String(refused)}`);
  assert.equal(isStoreFull(new Error('maximum bytes exceeded')), false, 'by code, not by text alone');
});

test('the shares of the budget fit in it, and every store that must keep a record per saga holds more sagas than ORDERS', () => {
  const shares = [...Object.values(StreamLimits), ...Object.values(BucketLimits)].reduce((a, l) => a + l.share, 0);
  assert.ok(shares <= 0.96, `shares sum to ${shares}`);
  // Bytes per saga relative to ORDERS, measured by the bench (README "Storage"), compensations counted twice.
  const relative: Partial<Record<string, number>> = {
    [Buckets.sagaRuns]: 1.63, [Buckets.orderView]: 0.45, [Buckets.inventory]: 0.57, [Buckets.payments]: 0.27 * 2, [Buckets.shipping]: 0.28 * 2, [Buckets.notifications]: 0.29,
  };
  for (const [bucket, r] of Object.entries(relative)) {
    const limit = BucketLimits[bucket as keyof typeof BucketLimits];
    assert.equal(limit.discard, 'new', bucket);
    assert.ok(limit.share / StreamLimits.orders.share > r!, `${bucket} holds fewer sagas than ORDERS holds orders`);
  }
});

test('ensureKv creates a bucket and updates its history and TTL', async () => {
  const kv = await ensureKv(nats.js, 'demo-kv', { history: 1 });
  await kv.put('a', 'one');
  const again = await ensureKv(nats.js, 'demo-kv', { history: 5, ttlMs: 60_000 });
  const status = await again.status();
  assert.equal(status.history, 5);
  assert.equal(status.ttl, 60_000);
  assert.equal((await again.get('a'))?.string(), 'one');
});

test('ensureKv waits while JetStream is unavailable (a server without it, then with it) and throw at once on a lasting refusal', async () => {
  const port = await freePort();
  let noJs = await startNatsServer({ port, jetstream: false });
  const client = await connect({ servers: noJs.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  try {
    let settled = false;
    const opening = ensureKv(jetstream(client), 'forming', { history: 1 }).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(settled, false, 'still waiting while the server has no JetStream');
    await noJs.stop();
    noJs = await startNatsServer({ port });
    const kv = await opening;
    assert.equal((await kv.status()).bucket, 'forming');
    // A refusal that stays (R3 on one server) is not waited out.
    const started = Date.now();
    await assert.rejects(ensureKv(jetstream(client), 'r3', { replicas: 3 }), StreamConfigError);
    assert.ok(Date.now() - started < 5000, `refused in ${Date.now() - started} ms`);
  } finally {
    await client.close();
    await noJs.stop();
  }
});
