import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kvm } from '@nats-io/kv';
import {
  Buckets,
  definitionRevision,
  orderFulfillmentDefinition,
  sagaEventEntries,
  type SagaEvent,
  type StepCommand,
} from '@sagamesh/contracts';
import { EngineRequestError } from '@sagamesh/participant';
import type { Started } from '@sagamesh/runtime';
import { waitFor } from '@sagamesh/testing';
import { resolveDefinition } from '../src/core/definition.ts';
import { transition } from '../src/core/transition.ts';
import { encodeRun, toOutbox } from '../src/outbox.ts';
import { recordEvents, spec, startEngine, startParticipants, startRig, waitTerminal, type Answer, type Rig } from './support/rig.ts';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('saga engine on a real nats-server', () => {
  let rig: Rig;
  let engine: Started;
  let participants: ReturnType<typeof startParticipants>;
  let recorder: ReturnType<typeof recordEvents>;
  /** Per-run scripts; runs without one succeed at every command. */
  const scripts = new Map<string, (cmd: StepCommand) => Answer>();
  const revisions = new Map<string, string>();

  async function define(name: string, s = spec()): Promise<{ key: string; revision: string }> {
    const key = `k8s.test.${name}`;
    const r = await rig.client.define({ key, spec: s });
    revisions.set(key, r.revision);
    return r;
  }
  async function run(runId: string, key: string, script?: (cmd: StepCommand) => Answer) {
    if (script) scripts.set(runId, script);
    return rig.client.start({ runId, definitionKey: key, revision: revisions.get(key)!, origin: 'k8s', input: { customerId: 'c-1' }, traceparent: TRACEPARENT });
  }
  const commandsOf = (runId: string) => participants.deliveries.filter((d) => d.command.runId === runId);
  const eventsOf = (runId: string) => recorder.events.filter((e) => e.run.runId === runId);
  const stepsCommanded = (runId: string) => commandsOf(runId).map((d) => `${d.command.step}:${d.command.action}:${d.command.attempt}`);

  before(async () => {
    rig = await startRig();
    engine = await startEngine(rig.server.url);
    participants = startParticipants(rig, (cmd) => scripts.get(cmd.runId)?.(cmd) ?? 'succeeded');
    recorder = recordEvents(rig);
  });
  after(async () => {
    recorder.stop();
    await participants.stop();
    await engine.stop();
    await rig.close();
  });

  it('defines the built-in order-fulfillment at start-up and answers API errors with typed codes', async () => {
    const builtin = await rig.client.define({ key: 'builtin.order-fulfillment', spec: orderFulfillmentDefinition });
    assert.equal(builtin.revision, definitionRevision(orderFulfillmentDefinition));

    const expectCode = async (p: Promise<unknown>, code: string) => {
      await assert.rejects(p, (err: unknown) => err instanceof EngineRequestError && err.code === code);
    };
    const bad = spec();
    bad.steps[1]!.name = 'reserve';
    await expectCode(rig.client.define({ key: 'k8s.test.dup', spec: bad }), 'invalid_request');
    const unknownCommand = spec();
    unknownCommand.steps[0]!.action = { service: 'payments', command: 'teleport' };
    await expectCode(rig.client.define({ key: 'k8s.test.unknown', spec: unknownCommand }), 'invalid_request');
    await expectCode(rig.client.define({ key: 'not-a-key', spec: spec() }), 'invalid_request');
    await expectCode(rig.client.start({ runId: 'x1', definitionKey: 'k8s.test.nope', revision: '', origin: 'k8s', input: {} }), 'unknown_definition');
    const { key } = await define('api');
    await expectCode(rig.client.start({ runId: 'x1', definitionKey: key, revision: 'deadbeefdeadbeef', origin: 'k8s', input: {} }), 'revision_mismatch');
    await expectCode(rig.client.start({ runId: 'bad:id', definitionKey: key, revision: '', origin: 'k8s', input: {} }), 'invalid_request');
    // An input that would not fit in the step commands is refused with its size, not started.
    await expectCode(rig.client.start({ runId: 'too-big', definitionKey: key, revision: '', origin: 'k8s', input: { blob: 'x'.repeat(70_000) } }), 'invalid_request');
    await expectCode(rig.client.get({ runId: 'too-big' }), 'not_found');
    await expectCode(rig.client.get({ runId: 'never-started' }), 'not_found');
    await expectCode(rig.client.cancel({ runId: 'never-started' }), 'not_found');
    const reply = await rig.nc.request('saga.engine.start', 'not json', { timeout: 2000 });
    assert.equal(reply.json<{ error: { code: string } }>().error.code, 'invalid_request');

    // An empty revision means the latest; a second start of the same run id returns it with created=false.
    const first = await rig.client.start({ runId: 'api-1', definitionKey: key, revision: '', origin: 'order', input: {} });
    assert.equal(first.created, true);
    assert.equal(first.run.revision, revisions.get(key));
    const again = await rig.client.start({ runId: 'api-1', definitionKey: 'builtin.order-fulfillment', revision: '', origin: 'k8s', input: { other: true } });
    assert.equal(again.created, false);
    assert.equal(again.run.definitionKey, key);
    assert.equal((await waitTerminal(rig, 'api-1')).phase, 'Succeeded');
  });

  it('happy path: commands in order with CloudEvents headers, events on saga.events.<origin>.<runId>, Succeeded', async () => {
    const { key } = await define('happy');
    const started = await run('happy-1', key);
    assert.equal(started.created, true);
    assert.equal(started.run.phase, 'Running');
    const view = await waitTerminal(rig, 'happy-1');
    assert.equal(view.phase, 'Succeeded');
    assert.equal(view.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.deepEqual(view.steps.map((s) => [s.name, s.status, s.attempts]), [['reserve', 'Succeeded', 1], ['charge', 'Succeeded', 1], ['ship', 'Succeeded', 1]]);

    const cmds = commandsOf('happy-1');
    assert.deepEqual(cmds.map((d) => d.subject), ['cmd.inventory.reserve', 'cmd.payments.charge', 'cmd.shipping.create']);
    assert.deepEqual(cmds.map((d) => d.msgId), ['happy-1.reserve.1', 'happy-1.charge.1', 'happy-1.ship.1']);
    const h = cmds[0]!.headers;
    assert.equal(h['ce-type'], 'sagamesh.inventory.reserve.v1');
    assert.equal(h['ce-correlationid'], 'happy-1');
    assert.equal(h['ce-source'], 'orchestrator');
    assert.equal(h['ce-id'], 'happy-1.reserve.1');
    assert.match(h.traceparent ?? '', /^00-4bf92f3577b34da6a3ce929d0e0e4736-/);
    assert.deepEqual(cmds[0]!.command.input, { customerId: 'c-1' });

    await waitFor(() => eventsOf('happy-1').some((e) => e.event === 'succeeded'), { what: 'the succeeded event' });
    const evs = eventsOf('happy-1');
    assert.deepEqual(evs.map((e) => `${e.event}${e.step ? `:${e.step}` : ''}`), [
      'started', 'step_started:reserve', 'step_succeeded:reserve', 'step_started:charge',
      'step_succeeded:charge', 'step_started:ship', 'step_succeeded:ship', 'succeeded',
    ]);
    // Views grow monotonically; the last one is terminal.
    const versions = evs.map((e) => e.run.version);
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
    assert.equal(evs.at(-1)!.run.phase, 'Succeeded');
    const stored = await rig.jsm.streams.getMessage('SAGA_EVENTS', { last_by_subj: 'saga.events.k8s.happy-1' });
    assert.equal(stored?.header.get('ce-type'), 'sagamesh.saga.succeeded.v1');
    // The end once more on saga.ended.<origin>.<runId>, for readers of ends only: the same event.
    const ended = await rig.jsm.streams.getMessage('SAGA_EVENTS', { last_by_subj: 'saga.ended.k8s.happy-1' });
    assert.equal(ended?.header.get('ce-type'), 'sagamesh.saga.succeeded.v1');
    assert.equal(ended?.header.get('ce-id'), stored?.header.get('ce-id'));
    assert.deepEqual(ended?.json(), stored?.json());
    const { state } = await rig.jsm.streams.info('SAGA_EVENTS', { subjects_filter: 'saga.ended.k8s.happy-1' });
    assert.deepEqual(state.subjects, { 'saga.ended.k8s.happy-1': 1 }, 'only the end goes to saga.ended');

    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    assert.match(metrics, /sagamesh_saga_started_total\{definition="k8s.test.happy"\} 1/);
    assert.match(metrics, /sagamesh_saga_ended_total\{definition="k8s.test.happy",outcome="succeeded"\} 1/);
    assert.match(metrics, /sagamesh_saga_step_duration_seconds_count\{definition="k8s.test.happy",step="charge",outcome="succeeded"\} 1/);
    assert.match(metrics, /sagamesh_saga_in_flight\{definition="k8s.test.happy"\} 0/);
    assert.doesNotMatch(metrics, /happy-1/, 'no run id in any label');
    assert.equal((await fetch(`http://127.0.0.1:${engine.port}/readyz`)).status, 200);
  });

  for (const failAt of [0, 1, 2]) {
    it(`a business failure at step ${failAt} compensates exactly the completed steps, in reverse`, async () => {
      const { key } = await define(`fail${failAt}`);
      const names = ['reserve', 'charge', 'ship'];
      const runId = `fail-${failAt}`;
      await run(runId, key, (cmd) => (cmd.action === 'do' && cmd.step === names[failAt] ? 'failed' : 'succeeded'));
      const view = await waitTerminal(rig, runId);
      assert.equal(view.phase, 'Compensated');
      assert.deepEqual(stepsCommanded(runId), [
        ...names.slice(0, failAt + 1).map((n) => `${n}:do:1`),
        ...names.slice(0, failAt).reverse().map((n) => `${n}:compensate:1`),
      ]);
      assert.equal(view.steps[failAt]!.status, 'Failed');
      assert.equal(view.steps[failAt]!.error?.code, 'declined');
      assert.equal(view.error?.code, 'step_failed');
    });
  }

  it('a step that keeps timing out is retried with backoff, then compensated with the completed ones', async () => {
    const { key } = await define('timeout', spec({ timeout: '300ms', attempts: 2 }));
    await run('timeout-1', key, (cmd) => (cmd.step === 'charge' && cmd.action === 'do' ? 'drop' : 'succeeded'));
    const view = await waitTerminal(rig, 'timeout-1');
    assert.equal(view.phase, 'Compensated');
    assert.deepEqual(stepsCommanded('timeout-1'), ['reserve:do:1', 'charge:do:1', 'charge:do:2', 'charge:compensate:1', 'reserve:compensate:1']);
    assert.equal(view.steps[1]!.attempts, 2);
    assert.equal(view.error?.code, 'step_timed_out');
    await waitFor(() => eventsOf('timeout-1').some((e) => e.event === 'compensated'), { what: 'compensated event' });
    assert.equal(eventsOf('timeout-1').filter((e) => e.event === 'step_retried').length, 1);
  });

  it('a timeout followed by a reply on the retry succeeds', async () => {
    const { key } = await define('retry-ok', spec({ timeout: '300ms', attempts: 3 }));
    await run('retry-ok-1', key, (cmd) => (cmd.step === 'reserve' && cmd.attempt === 1 ? 'drop' : 'succeeded'));
    const view = await waitTerminal(rig, 'retry-ok-1');
    assert.equal(view.phase, 'Succeeded');
    assert.deepEqual(stepsCommanded('retry-ok-1'), ['reserve:do:1', 'reserve:do:2', 'charge:do:1', 'ship:do:1']);
  });

  it('a compensation that keeps failing is retried up to its cap; the earlier steps are still undone, then the run is Failed', async () => {
    const { key } = await define('compfail');
    await run('compfail-1', key, (cmd) => (cmd.step === 'ship' && cmd.action === 'do' ? 'failed' : cmd.step === 'charge' && cmd.action === 'compensate' ? 'failed' : 'succeeded'));
    const view = await waitTerminal(rig, 'compfail-1');
    assert.equal(view.phase, 'Failed');
    assert.deepEqual(stepsCommanded('compfail-1'), ['reserve:do:1', 'charge:do:1', 'ship:do:1', 'charge:compensate:1', 'charge:compensate:2', 'charge:compensate:3', 'reserve:compensate:1']);
    assert.equal(view.steps[1]!.status, 'CompensationFailed');
    assert.equal(view.steps[0]!.status, 'Compensated');
    assert.equal(view.error?.code, 'compensation_failed');
  });

  it('a due timer of a run whose engine stopped is fired by the next engine, from the record', async () => {
    const { key } = await define('timer-restart', spec({ timeout: '1s', attempts: 2 }));
    await run('timer-restart-1', key, (cmd) => (cmd.step === 'reserve' && cmd.attempt === 1 ? 'drop' : 'succeeded'));
    await waitFor(() => commandsOf('timer-restart-1').length === 1, { what: 'reserve commanded' });
    // The engine goes away with the step's timeout pending: only the record remembers it.
    await engine.stop();
    const record = (await (await new Kvm(rig.js).open(Buckets.sagaRuns)).get('timer-restart-1'))!.json<{ state: { timers: { kind: string; attempt?: number }[] } }>();
    assert.deepEqual(record.state.timers.map((t) => `${t.kind}:${t.attempt ?? ''}`).sort(), ['deadline:', 'step-timeout:1']);
    engine = await startEngine(rig.server.url);
    const view = await waitTerminal(rig, 'timer-restart-1');
    assert.equal(view.phase, 'Succeeded');
    assert.deepEqual(stepsCommanded('timer-restart-1'), ['reserve:do:1', 'reserve:do:2', 'charge:do:1', 'ship:do:1']);
    assert.equal(view.steps[0]!.attempts, 2);
  });

  it('the deadline (a durable timer kept in the run record) compensates a run whose step never answers', async () => {
    const { key } = await define('deadline', spec({ deadline: '1s' }));
    await run('deadline-1', key, (cmd) => (cmd.step === 'charge' && cmd.action === 'do' ? 'drop' : 'succeeded'));
    const view = await waitTerminal(rig, 'deadline-1');
    assert.equal(view.phase, 'Compensated');
    assert.equal(view.error?.code, 'deadline_exceeded');
    assert.deepEqual(stepsCommanded('deadline-1'), ['reserve:do:1', 'charge:do:1', 'charge:compensate:1', 'reserve:compensate:1']);
    // Timers live in the run record only: none are left once it is terminal.
    const record = (await (await new Kvm(rig.js).open(Buckets.sagaRuns)).get('deadline-1'))!.json<{ state: { timers: unknown[] } }>();
    assert.deepEqual(record.state.timers, []);
  });

  it('cancel compensates what is done', async () => {
    const { key } = await define('cancel');
    await run('cancel-1', key, (cmd) => (cmd.step === 'charge' && cmd.action === 'do' ? 'drop' : 'succeeded'));
    await waitFor(() => commandsOf('cancel-1').some((d) => d.command.step === 'charge'), { what: 'charge commanded' });
    const cancelled = await rig.client.cancel({ runId: 'cancel-1' });
    assert.equal(cancelled.run.phase, 'Compensating');
    const view = await waitTerminal(rig, 'cancel-1');
    assert.equal(view.phase, 'Compensated');
    assert.equal(view.error?.code, 'cancelled');
    assert.deepEqual(stepsCommanded('cancel-1'), ['reserve:do:1', 'charge:do:1', 'charge:compensate:1', 'reserve:compensate:1']);
    assert.equal((await rig.client.cancel({ runId: 'cancel-1' })).run.phase, 'Compensated');
  });

  it('duplicated replies, and a late copy after the run ended, have a single effect', async () => {
    const { key } = await define('dups');
    await run('dups-1', key, () => ({ outcome: 'succeeded', copies: 3 }));
    const view = await waitTerminal(rig, 'dups-1');
    assert.equal(view.phase, 'Succeeded');
    assert.equal(commandsOf('dups-1').length, 3);
    await waitFor(() => eventsOf('dups-1').some((e) => e.event === 'succeeded'), { what: 'succeeded event' });
    const count = (name: SagaEvent['event']) => eventsOf('dups-1').filter((e) => e.event === name).length;
    assert.equal(count('step_succeeded'), 3);
    assert.equal(count('succeeded'), 1);
    // A copy of the first reply, redelivered long after: nothing changes.
    const { publishEvent } = await import('@sagamesh/runtime');
    const { STEP_REPLY_TYPE } = await import('@sagamesh/contracts');
    await publishEvent(rig.js, 'saga.replies.dups-1', {
      type: STEP_REPLY_TYPE, source: 'test', correlationId: 'dups-1', msgId: 'late-copy',
      data: { runId: 'dups-1', step: 'reserve', action: 'do', attempt: 1, outcome: 'failed', error: { code: 'x', message: 'late' } },
    });
    await waitFor(async () => (await rig.jsm.consumers.info('SAGA_REPLIES', 'orchestrator-replies')).num_ack_pending === 0 && (await rig.jsm.consumers.info('SAGA_REPLIES', 'orchestrator-replies')).num_pending === 0, { what: 'the late copy handled' });
    const after = (await rig.client.get({ runId: 'dups-1' })).run;
    assert.equal(after.version, view.version);
    assert.equal(after.phase, 'Succeeded');
  });

  it('an order run: its progress is one plain message per transition (not kept), its end kept on saga.ended alone', async () => {
    const { key } = await define('live');
    await rig.client.start({ runId: 'live-1', definitionKey: key, revision: revisions.get(key)!, origin: 'order', input: {} });
    assert.equal((await waitTerminal(rig, 'live-1')).phase, 'Succeeded');
    await waitFor(() => eventsOf('live-1').some((e) => sagaEventEntries(e).some((x) => x.event === 'succeeded')), { what: 'the succeeded event' });
    const messages = eventsOf('live-1');
    assert.deepEqual(messages.map((m) => sagaEventEntries(m).map((e) => `${e.event}${e.step ? `:${e.step}` : ''}`)), [
      ['started', 'step_started:reserve'],
      ['step_succeeded:reserve', 'step_started:charge'],
      ['step_succeeded:charge', 'step_started:ship'],
      ['step_succeeded:ship', 'succeeded'],
    ]);
    const { state } = await rig.jsm.streams.info('SAGA_EVENTS', { subjects_filter: '*.*.order.live-1' });
    assert.deepEqual(state.subjects, { 'saga.ended.order.live-1': 1 }, 'only the end is kept');
    const ended = await rig.jsm.streams.getMessage('SAGA_EVENTS', { last_by_subj: 'saga.ended.order.live-1' });
    const end = ended!.json<SagaEvent>();
    assert.equal(end.event, 'succeeded');
    assert.equal(end.more, undefined, 'the kept end carries only itself');
    assert.equal(end.run.phase, 'Succeeded');
  });

  it('publishes the outbox a crashed engine persisted but never sent (sweep)', async () => {
    const { key, revision } = await define('outbox');
    await engine.stop();
    // What a crash right after the compare-and-set leaves: the new state and its unsent outbox.
    const def = resolveDefinition(key, revision, spec());
    const { run: state, effects } = transition(undefined, def, { type: 'start', runId: 'outbox-1', origin: 'k8s', input: {} }, Date.now() - 5000);
    const kv = await new Kvm(rig.js).open(Buckets.sagaRuns);
    await kv.create('outbox-1', encodeRun({ state, outbox: toOutbox(state, effects) }));
    engine = await startEngine(rig.server.url);
    const view = await waitTerminal(rig, 'outbox-1');
    assert.equal(view.phase, 'Succeeded');
    assert.deepEqual(stepsCommanded('outbox-1'), ['reserve:do:1', 'charge:do:1', 'ship:do:1']);
  });

  it("a definition's saga counters are at 0 before its first run: from its define, and on an engine started after it", async () => {
    const { key } = await define('zeroed');
    const zeroed = (m: string) =>
      m.includes(`sagamesh_saga_ended_total{definition="${key}",outcome="compensated"} 0`) && m.includes(`sagamesh_saga_compensations_total{definition="${key}",step="reserve"} 0`);
    assert.ok(zeroed(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text()), 'the engine that took the define');
    const later = await startEngine(rig.server.url);
    try {
      // Read in the background after start-up.
      await waitFor(async () => zeroed(await (await fetch(`http://127.0.0.1:${later.port}/metrics`)).text()), { what: 'zeroes on an engine started after the define' });
    } finally {
      await later.stop();
    }
  });

  it('two engine replicas on the same bucket never double-command a step', async () => {
    const second = await startEngine(rig.server.url);
    try {
      const { key } = await define('replicas');
      const ids = Array.from({ length: 40 }, (_, i) => `rep-${i}`);
      await Promise.all(ids.map((id) => run(id, key, () => ({ outcome: 'succeeded', copies: 2 }))));
      for (const id of ids) assert.equal((await waitTerminal(rig, id, 30_000)).phase, 'Succeeded');
      const cmds = participants.deliveries.filter((d) => d.command.runId.startsWith('rep-'));
      const msgIds = cmds.map((d) => d.msgId);
      assert.equal(new Set(msgIds).size, msgIds.length, 'a command delivered twice');
      assert.equal(cmds.length, ids.length * 3);
      assert.ok(cmds.every((d) => d.command.attempt === 1 && d.deliveryCount === 1));
      // Both replicas did the work.
      for (const e of [engine, second]) {
        const m = await (await fetch(`http://127.0.0.1:${e.port}/metrics`)).text();
        assert.match(m, /sagamesh_messages_handled_total\{service="orchestrator",consumer="orchestrator-replies",outcome="ack"\} [1-9]/);
      }
    } finally {
      await second.stop();
    }
  });
});
