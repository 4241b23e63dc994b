/**
 * `make dlq` on a real nats-server: a consumer dead-letters a message it cannot handle yet; list shows it with its
 * reason, replay hands it to the same consumer again (now fixed), which handles it; discard removes one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ceType, Streams } from '@sagamesh/contracts';
import { type ConsumerHandle, createLogger, createMetrics, declarePlatformStreams, ensureStreams, PoisonMessageError, publishEvent, runConsumer } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { discardDeadLetter, listDeadLetters, replayDeadLetter, showDeadLetter } from '@sagamesh/runtime';

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let consumer: ConsumerHandle;
let fixed = false;
const handled: unknown[] = [];

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await declarePlatformStreams(jsm);
  await ensureStreams(jsm, [{ name: 'OPS_WORK', subjects: ['ops.>'] }]);
  consumer = runConsumer({
    nc,
    js,
    jsm,
    stream: 'OPS_WORK',
    consumer: { durable: 'ops', filterSubjects: ['ops.>'] },
    concurrency: 2,
    service: 'ops-test',
    log: createLogger('ops-test', 'silent'),
    metrics: createMetrics('ops-test'),
    handler: async (m) => {
      if (!fixed) throw new PoisonMessageError('the handler does not know this yet');
      handled.push(m.json());
      return 'ack';
    },
  });
});
after(async () => {
  await consumer?.stop();
  await nc?.close();
  await server?.stop();
});

const send = (subject: string, data: unknown) => publishEvent(js, subject, { type: ceType('ops', 'work'), source: 'ops-test', data, correlationId: 'c-1' });

test('list shows a dead letter with where and why it died; replay gives it to its consumer again and removes it', async () => {
  await send('ops.one', { n: 1 });
  const [letter] = await waitFor(async () => {
    const l = (await listDeadLetters(jsm)).deadLetters;
    return l.length === 1 ? l : undefined;
  }, { what: 'the dead letter' });
  assert.equal(letter!.subject, 'ops.one');
  assert.equal(letter!.stream, 'OPS_WORK');
  assert.equal(letter!.consumer, 'ops');
  assert.match(letter!.reason, /poison: the handler does not know this yet/);
  const shown = await showDeadLetter(jsm, letter!.seq);
  assert.deepEqual(JSON.parse(shown!.body), { n: 1 });
  assert.equal(shown!.headers['ce-type'], ceType('ops', 'work'));

  fixed = true;
  assert.equal((await replayDeadLetter(js, jsm, letter!.seq))?.subject, 'ops.one');
  await waitFor(() => handled.length === 1, { what: 'the replayed message handled' });
  assert.deepEqual(handled, [{ n: 1 }]);
  assert.deepEqual((await listDeadLetters(jsm)).deadLetters, []);
  assert.equal(await replayDeadLetter(js, jsm, letter!.seq), undefined, 'a replayed letter is gone');
});

test('discard removes one dead letter; an unknown sequence says so', async () => {
  fixed = false;
  await send('ops.two', { n: 2 });
  const [letter] = await waitFor(async () => {
    const l = (await listDeadLetters(jsm)).deadLetters;
    return l.length === 1 ? l : undefined;
  }, { what: 'the dead letter' });
  assert.equal(await discardDeadLetter(jsm, letter!.seq), true);
  assert.deepEqual((await listDeadLetters(jsm)).deadLetters, []);
  assert.equal(await discardDeadLetter(jsm, 999_999), false);
  assert.equal((await jsm.streams.info(Streams.deadLetters.name)).state.messages, 0);
});
