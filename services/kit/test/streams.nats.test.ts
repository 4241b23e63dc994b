import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { DUPLICATE_WINDOW_MS, Streams } from '@sagamesh/contracts';
import { StreamConfigError, declarePlatformStreams, ensureKv, ensureStreams } from '@sagamesh/kit';
import { startNatsServer, type NatsServer } from '@sagamesh/kit/testing';

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});
after(async () => {
  await nc.close();
  await server.stop();
});

/** Counts the stream create/update API requests seen on the server while `fn` runs. */
async function streamWrites(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const watcher = await connect({ servers: server.url });
  const sub = watcher.subscribe('$JS.API.STREAM.>', { callback: (_e, m) => {
    if (/^\$JS\.API\.STREAM\.(CREATE|UPDATE)\./.test(m.subject)) seen.push(m.subject);
  } });
  await watcher.flush();
  await fn();
  await nc.flush();
  await watcher.flush();
  sub.unsubscribe();
  await watcher.close();
  return seen;
}

test('ensureStreams creates, then a second identical call writes nothing', async () => {
  const spec = { name: 'DEMO', subjects: ['demo.a.>'], retention: 'workqueue' as const, maxAgeMs: 3_600_000 };
  const first = await streamWrites(() => ensureStreams(jsm, [spec]));
  assert.deepEqual(first, ['$JS.API.STREAM.CREATE.DEMO']);
  const second = await streamWrites(() => ensureStreams(jsm, [spec]));
  assert.deepEqual(second, []);
  const { config } = await jsm.streams.info('DEMO');
  assert.equal(config.retention, RetentionPolicy.Workqueue);
  assert.equal(config.max_age, 3_600_000 * 1e6);
  assert.equal(config.duplicate_window, DUPLICATE_WINDOW_MS * 1e6);
});

test('ensureStreams updates a changed subject list in place, keeping the messages', async () => {
  await ensureStreams(jsm, [{ name: 'DEMO2', subjects: ['demo2.a.>'] }]);
  await jsm.jetstream().publish('demo2.a.1', 'kept');
  const writes = await streamWrites(() => ensureStreams(jsm, [{ name: 'DEMO2', subjects: ['demo2.a.>', 'demo2.b.>'] }]));
  assert.deepEqual(writes, ['$JS.API.STREAM.UPDATE.DEMO2']);
  const info = await jsm.streams.info('DEMO2');
  assert.deepEqual([...info.config.subjects].sort(), ['demo2.a.>', 'demo2.b.>']);
  assert.equal(info.state.messages, 1);
  await jsm.jetstream().publish('demo2.b.1', 'new subject accepted');
});

test('ensureStreams refuses a retention change with a clear error', async () => {
  await ensureStreams(jsm, [{ name: 'DEMO3', subjects: ['demo3.>'] }]);
  await assert.rejects(ensureStreams(jsm, [{ name: 'DEMO3', subjects: ['demo3.>'], retention: 'workqueue' }]), (err: unknown) => {
    assert.ok(err instanceof StreamConfigError);
    assert.match(err.message, /stream DEMO3 exists with retention=limits .* delete the stream to recreate it/);
    return true;
  });
});

test('declarePlatformStreams declares every platform stream with its settings, idempotently', async () => {
  await declarePlatformStreams(jsm);
  await declarePlatformStreams(jsm);
  const day = 24 * 3600 * 1e9;
  const expected: Record<string, { retention: string; max_age: number }> = {
    [Streams.commands.name]: { retention: 'workqueue', max_age: 0 },
    [Streams.replies.name]: { retention: 'workqueue', max_age: 0 },
    [Streams.sagaEvents.name]: { retention: 'limits', max_age: day },
    [Streams.domainEvents.name]: { retention: 'limits', max_age: day },
    [Streams.orders.name]: { retention: 'limits', max_age: 0 },
    [Streams.deadLetters.name]: { retention: 'limits', max_age: 7 * day },
  };
  for (const s of Object.values(Streams)) {
    const { config } = await jsm.streams.info(s.name);
    assert.deepEqual([...config.subjects], [...s.subjects], s.name);
    assert.deepEqual({ retention: config.retention, max_age: config.max_age }, expected[s.name], s.name);
    assert.equal(config.storage, 'file', s.name);
    assert.equal(config.duplicate_window, DUPLICATE_WINDOW_MS * 1e6, s.name);
  }
});

test('ensureKv creates a bucket and updates its history and TTL', async () => {
  const kv = await ensureKv(jsm.jetstream(), 'demo-kv', { history: 1 });
  await kv.put('a', 'one');
  const again = await ensureKv(jsm.jetstream(), 'demo-kv', { history: 5, ttlMs: 60_000 });
  const status = await again.status();
  assert.equal(status.history, 5);
  assert.equal(status.ttl, 60_000);
  assert.equal((await again.get('a'))?.string(), 'one');
});
