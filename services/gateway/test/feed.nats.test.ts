/**
 * The explorer's feed on a real nats-server: SAGA_EVENTS keeps only each run's latest event (and of an order run, only
 * its end), so the attempts a run went through reach the explorer only because the feed follows the events as they
 * are published; the runs already there when it begins to follow come from the stream's look-back. It follows only
 * while a live list is open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { isProgressDurable, isSagaEndEvent, type RunView, type SagaEvent, SagaEndSubjects, Subjects } from '@sagamesh/contracts';
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

const view = (runId: string, version: number, phase: RunView['phase'] = 'Running', origin: RunView['origin'] = 'order'): RunView => ({
  runId, definitionKey: 'builtin.order-fulfillment', revision: 'r', origin, phase, steps: [], startedAt: '2025-01-01T00:00:00.000Z', version,
});
/** As the engine publishes: progress kept only for isProgressDurable origins (plain NATS otherwise), every end kept on saga.ended. */
const publish = async (event: SagaEvent['event'], run: RunView) => {
  const data: SagaEvent = { event, run };
  const json = JSON.stringify(data);
  const headers = () => buildHeaders({ type: 'sagamesh.saga.progress.v1', source: 'test', data, correlationId: run.runId });
  const subject = Subjects.sagaEvent(run.origin, run.runId);
  if (isProgressDurable(run.origin)) await jetstream(nc).publish(subject, json, { headers: headers() });
  else nc.publish(subject, json, { headers: headers() });
  if (isSagaEndEvent(event)) await jetstream(nc).publish(SagaEndSubjects.ended(run.origin, run.runId), json, { headers: headers() });
};
const progress = (runId: string) => [publish('started', view(runId, 1)), publish('step_started', view(runId, 2)), publish('step_failed', view(runId, 3)), publish('compensated', view(runId, 4, 'Compensated'))];

describe('the explorer feed', () => {
  it('keeps every event of a run it saw live (the stream keeps only the latest), and lists the runs from before it started', async () => {
    await Promise.all(progress('before-start'));
    await publish('started', view('k8s-running', 1, 'Running', 'k8s'));
    await publish('step_started', view('k8s-running', 2, 'Running', 'k8s'));
    await publish('started', view('order-running', 1));
    await nc.flush();
    const index = new RunIndex(100);
    const feed = startRunFeed({ nc, js: jetstream(nc), jsm: await jetstreamManager(nc), index, log: createLogger('test', 'silent'), idleMs: 60_000 });
    feed.watch();
    try {
      await waitFor(async () => index.get('before-start') !== undefined && index.get('k8s-running') !== undefined, { what: 'the look-back to list the earlier runs' });
      const earlier = index.get('before-start')!;
      assert.equal(earlier.run.version, 4);
      assert.equal(earlier.complete, false, 'only its end is left in the stream');
      assert.equal(index.get('k8s-running')!.run.version, 2, 'a k8s run is listed at its latest progress');
      assert.equal(index.get('order-running'), undefined, 'an order run\'s progress is not kept: it is listed with its next event');

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

  it('follows only while a live list is open, and for idleMs after the last one closed; then again, look-back first', async () => {
    const index = new RunIndex(100);
    const feed = startRunFeed({ nc, js: jetstream(nc), jsm: await jetstreamManager(nc), index, log: createLogger('test', 'silent'), idleMs: 1500 });
    try {
      await Promise.all(progress('unwatched'));
      await nc.flush();
      await sleep(200);
      assert.equal(index.size, 0, 'nobody watches: nothing is read');

      const first = feed.watch();
      const second = feed.watch();
      await waitFor(async () => index.get('unwatched')?.run.version === 4, { what: 'the look-back at the first watch' });
      assert.equal(index.get('unwatched')!.complete, false);
      first();
      first(); // a second call of the same release counts once
      await Promise.all(progress('one-left'));
      await waitFor(async () => index.get('one-left')?.run.version === 4, { what: 'live events while one list is open' });
      assert.equal(index.get('one-left')!.complete, true);

      second();
      await Promise.all(progress('within-idle'));
      await waitFor(async () => index.get('within-idle')?.run.version === 4, { what: 'live events within idleMs of the last close' });
      assert.equal(index.get('within-idle')!.complete, true);
      await sleep(2000);
      await publish('started', view('after-idle', 1));
      await nc.flush();
      await sleep(200);
      assert.equal(index.get('after-idle'), undefined, 'idleMs after the last close, live events are no longer read');

      const again = feed.watch();
      await Promise.all([publish('step_started', view('after-idle', 2)), publish('compensated', view('after-idle', 3, 'Compensated'))]);
      await waitFor(async () => index.get('after-idle')?.run.version === 3, { what: 'following again at the next watch' });
      assert.equal(index.get('after-idle')!.complete, false, 'its start came while nobody watched');
      assert.equal(index.get('one-left')!.run.version, 4, 'what the index held is kept');
      again();
    } finally {
      await feed.stop();
    }
  });
});
