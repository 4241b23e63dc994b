import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ceType } from '@sagamesh/contracts';
import { connectNats, createLogger, createMetrics, ensureStreams, type NatsConnection, publishEvent, runConsumer } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';

const servers: NatsServer[] = [];
let nc: NatsConnection | undefined;
after(async () => {
  await nc?.close();
  for (const s of servers.reverse()) await s.stop();
});

test('a consumer keeps consuming after the nats-server crashes and comes back on the same store', async () => {
  const first = await startNatsServer();
  servers.push(first);
  const log = createLogger('runtime-test', 'silent');
  nc = await connectNats({ servers: first.url, name: 'runtime-test', log });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, [{ name: 'RECONNECT', subjects: ['rc.>'], retention: 'workqueue' }]);
  const seen: string[] = [];
  const handle = runConsumer({
    nc,
    js,
    jsm,
    stream: 'RECONNECT',
    consumer: { durable: 'rc', filterSubjects: ['rc.>'] },
    concurrency: 2,
    service: 'runtime-test',
    log,
    metrics: createMetrics('runtime-test'),
    handler: async (m) => {
      seen.push(m.subject);
      return 'ack';
    },
    restartBackoff: { initialMs: 50, maxMs: 500 },
  });
  const publish = (subject: string) => publishEvent(js, subject, { type: ceType('test', 'rc'), source: 'runtime-test', data: {}, correlationId: 'c' });
  await publish('rc.1');
  await waitFor(() => seen.length === 1, { what: 'first message' });
  await waitFor(async () => (await jsm.consumers.info('RECONNECT', 'rc')).num_ack_pending === 0, { what: 'the ack to reach the server' });

  first.kill();
  const second = await startNatsServer({ port: first.port, storeDir: first.storeDir });
  servers.push(second);
  await waitFor(() => publish('rc.2').then(() => true), { what: 'publishing after the restart', timeoutMs: 20_000 });
  await waitFor(() => seen.includes('rc.2'), { what: 'the message published after the restart', timeoutMs: 40_000 });
  assert.equal(seen.filter((s) => s === 'rc.1').length, 1, 'the acked message is not redelivered');
  await handle.stop();
});
