import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, NoRespondersError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { type NatsServer, startNatsServer } from '@sagamesh/testing';
import { isJetStreamUnavailable } from '@sagamesh/contracts';
import { JetStreamPublisher, kvWrite } from '../src/publisher.ts';

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await (await jetstreamManager(nc)).streams.add({ name: 'PUB', subjects: ['pub.>'] });
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

test('acks, de-dup ids and expectations work as with JetStreamClient.publish', async () => {
  const pub = new JetStreamPublisher(nc);
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish(`pub.${i % 5}`, `m${i}`)));
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'acks come back to their own publish');
  assert.equal(acks[0]!.stream, 'PUB');
  const first = await pub.publish('pub.x', 'once', { msgID: 'id-1' });
  const again = await pub.publish('pub.x', 'once', { msgID: 'id-1' });
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
  await assert.rejects(pub.publish('pub.x', 'stale', { expect: { lastSubjectSequence: 1 } }), (err: unknown) => err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence);
  assert.equal((await pub.publish('pub.x', 'next', { expect: { lastSubjectSequence: first.seq, lastMsgID: 'id-1' } })).seq, first.seq + 1);
  pub.close();
});

test('no stream is a NoRespondersError; no ack in time a TimeoutError; both count as the bus unavailable; close fails what waits', async () => {
  const pub = new JetStreamPublisher(nc, { timeoutMs: 300 });
  // As a stream whose server is away answers; the consumers retry such a failure in place instead of spending a delivery.
  await assert.rejects(pub.publish('nobody.listens', 'x'), (err: unknown) => err instanceof NoRespondersError && isJetStreamUnavailable(err));
  await assert.rejects(jetstream(nc).publish('nobody.listens', 'x', { retries: 1 }), (err: unknown) => isJetStreamUnavailable(err));
  // A subscriber that never answers: the publish times out.
  const silent = nc.subscribe('silent.>', { callback: () => undefined });
  const t0 = Date.now();
  await assert.rejects(pub.publish('silent.x', 'x'), (err: unknown) => err instanceof TimeoutError && isJetStreamUnavailable(err));
  assert.ok(Date.now() - t0 >= 300);
  const waiting = pub.publish('silent.y', 'y', { timeout: 10_000 });
  pub.close();
  await assert.rejects(waiting, /closed before the reply/);
  silent.unsubscribe();
});

test('kvWrite is a KV put with compare-and-set, readable through the KV API', async () => {
  const js = jetstream(nc);
  const kv = await new Kvm(js).create('pubkv', { history: 1 });
  const pub = new JetStreamPublisher(nc);
  const rev = await kvWrite(pub, 'pubkv', 'k', '{"a":1}', 0);
  assert.deepEqual((await kv.get('k'))?.json(), { a: 1 });
  assert.equal((await kv.get('k'))?.revision, rev);
  await assert.rejects(kvWrite(pub, 'pubkv', 'k', 'x', 0), (err: unknown) => err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence);
  assert.equal(await kvWrite(pub, 'pubkv', 'k', '{"a":2}', rev), rev + 1);
  pub.close();
});
