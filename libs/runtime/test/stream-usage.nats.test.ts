/** The streams' fill level, as Prometheus reads it from the engine: bytes and limit per platform stream, fresh on each scrape. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Streams } from '@sagamesh/contracts';
import { startNatsServer, type NatsServer } from '@sagamesh/testing';
import { Registry } from 'prom-client';
import { createLogger, declarePlatformStreams, registerStreamUsage } from '../src/index.ts';

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

/** `metric{stream="S"} value` lines of a scrape, as a map of stream → value. */
function series(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${metric}\\{stream="([^"]+)"\\} (\\S+)$`, 'gm'))) out.set(m[1]!, Number(m[2]));
  return out;
}

describe('registerStreamUsage', () => {
  it('reports each platform stream\'s bytes and limit at every scrape, and nothing for a stream that does not answer', async () => {
    const jsm = await jetstreamManager(nc);
    await declarePlatformStreams(jsm, 1, undefined, 256);
    const registry = new Registry();
    registerStreamUsage(registry, jsm, createLogger('test', 'silent'));

    const first = await registry.metrics();
    const bytes = series(first, 'sagamesh_stream_bytes');
    const limits = series(first, 'sagamesh_stream_max_bytes');
    assert.deepEqual([...bytes.keys()].sort(), Object.values(Streams).map((s) => s.name).sort(), 'every platform stream');
    assert.equal(bytes.get(Streams.deadLetters.name), 0);
    assert.equal(limits.get(Streams.deadLetters.name), (await jsm.streams.info(Streams.deadLetters.name)).config.max_bytes);
    assert.ok(limits.get(Streams.deadLetters.name)! > 0, 'DEAD_LETTERS is bounded');

    await jetstream(nc).publish('dlq.cmd.payments.charge', 'x'.repeat(1000));
    const grown = series(await registry.metrics(), 'sagamesh_stream_bytes').get(Streams.deadLetters.name)!;
    assert.ok(grown > 1000, `a dead letter of 1000 bytes shows at the next scrape (got ${grown})`);

    await jsm.streams.delete(Streams.deadLetters.name);
    const after = await registry.metrics();
    assert.equal(series(after, 'sagamesh_stream_bytes').has(Streams.deadLetters.name), false, 'no stale figure for a stream that does not answer');
    assert.equal(series(after, 'sagamesh_stream_max_bytes').has(Streams.deadLetters.name), false);
    assert.ok(series(after, 'sagamesh_stream_bytes').has(Streams.orders.name));
  });
});
