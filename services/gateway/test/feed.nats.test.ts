/**
 * The explorer's feed on a real nats-server: SAGA_EVENTS keeps only each run's latest event, so the attempts a run
 * went through reach the explorer only because the feed follows the events as they are published; the runs already
 * there at start come from the stream's look-back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type RunView, type SagaEvent, Subjects } from '@sagamesh/contracts';
import { buildHeaders, createLogger, declarePlatformStreams } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { startRunFeed } from '../src/explorer/feed.ts';
import { RunIndex } from '../src/explorer/run-index.ts';

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await declarePlatformStreams(await jetstreamManager(nc));
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

const view = (runId: string, version: number, phase: RunView['phase'] = 'Running'): RunView => ({
  runId, definitionKey: 'builtin.order-fulfillment', revision: 'r', origin: 'order', phase, steps: [], startedAt: '2025-01-01T00:00:00.000Z', version,
});
const publish = (event: SagaEvent['event'], run: RunView) => {
  const data: SagaEvent = { event, run };
  return jetstream(nc).publish(Subjects.sagaEvent('order', run.runId), JSON.stringify(data), {
    headers: buildHeaders({ type: 'sagamesh.saga.progress.v1', source: 'test', data, correlationId: run.runId }),
  });
};
const progress = (runId: string) => [publish('started', view(runId, 1)), publish('step_started', view(runId, 2)), publish('step_failed', view(runId, 3)), publish('compensated', view(runId, 4, 'Compensated'))];

describe('the explorer feed', () => {
  it('keeps every event of a run it saw live (the stream keeps only the latest), and lists the runs from before it started', async () => {
    await Promise.all(progress('before-start'));
    const index = new RunIndex(100);
    const feed = startRunFeed({ nc, js: jetstream(nc), jsm: await jetstreamManager(nc), index, log: createLogger('test', 'silent') });
    try {
      await waitFor(async () => index.get('before-start') !== undefined, { what: 'the look-back to list the earlier run' });
      const earlier = index.get('before-start')!;
      assert.equal(earlier.run.version, 4);
      assert.equal(earlier.complete, false, 'only its latest event is left in the stream');

      await nc.flush();
      await Promise.all(progress('live'));
      await waitFor(async () => index.get('live')?.run.version === 4, { what: 'the live run at its last version' });
      const live = index.get('live')!;
      assert.deepEqual(live.events.map((e) => e.event), ['started', 'step_started', 'step_failed', 'compensated']);
      assert.equal(live.complete, true);
    } finally {
      await feed.stop();
    }
  });
});
