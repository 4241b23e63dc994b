/**
 * The operator on a real kube-apiserver, with a real nats-server, the real engine and participants:
 * apply a Saga and watch it run, fail a step, delete one mid-run, and use the real kubectl.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SAGA_FINALIZER, type SagaDefinitionSpec, type SagaObject } from '@sagamesh/contracts';
import { EngineClient } from '@sagamesh/participant';
import { connectNats, createLogger, type NatsConnection } from '@sagamesh/runtime';
import { waitFor } from '@sagamesh/testing';
import {
  create,
  definitionObject,
  deleteSaga,
  eventsFor,
  getDefinition,
  getSaga,
  kubectl,
  sagaObject,
  startOperatorInProcess,
  startPlatform,
  waitForSaga,
  type Platform,
} from './harness.ts';
import { builtinWithStepTimeout, slowSteps } from './fixtures.ts';

/** The built-in steps, with room for injected latency under the step timeout. */
const roomy = builtinWithStepTimeout('10s');
const cond = (s: SagaObject, type: string) => s.status?.conditions?.find((c) => c.type === type);

let p: Platform;
let operator: { stop(): Promise<void> };
let nc: NatsConnection;
let engine: EngineClient;

before(async () => {
  p = await startPlatform();
  operator = await startOperatorInProcess(p);
  nc = await connectNats({ servers: p.nats!.url, name: 'test', log: createLogger('test', 'warn') });
  engine = new EngineClient(nc);
  await create(p, definitionObject('order-fulfillment', roomy));
});

after(async () => {
  await nc?.drain();
  await operator?.stop();
  await p?.stop();
});

describe('SagaDefinition', () => {
  it('is registered with the engine: Ready=True with its revision and step count, shown by kubectl', async () => {
    const def = await waitFor(async () => {
      const d = await getDefinition(p, 'order-fulfillment');
      return d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? d : undefined;
    }, { timeoutMs: 30_000, what: 'the definition to be Ready' });
    assert.match(def.status!.revision!, /^[0-9a-f]{16}$/);
    assert.equal(def.status!.key, 'k8s.default.order-fulfillment');
    assert.equal(def.status!.stepCount, 3);
    assert.equal(def.status!.observedGeneration, def.metadata.generation);
    const out = await kubectl(p, ['get', 'sd', 'order-fulfillment']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^NAME\s+STEPS\s+READY\s+AGE\n/);
    assert.match(out.stdout, /order-fulfillment\s+3\s+True\s+/);
  });
});

describe('Saga', () => {
  it('runs to Succeeded: every step in the status, conditions, Events, no finalizer left, and kubectl shows it', async () => {
    const created = await create(p, sagaObject('ok-1'));
    const s = await waitForSaga(p, 'ok-1', (x) => x.status?.phase === 'Succeeded' && !x.metadata.finalizers?.length);
    assert.equal(s.status!.runId, created.metadata.uid);
    assert.equal(s.status!.observedGeneration, 1);
    assert.deepEqual(
      s.status!.steps!.map((st) => [st.name, st.status, st.attempts]),
      [['reserve-inventory', 'Succeeded', 1], ['charge-payment', 'Succeeded', 1], ['create-shipment', 'Succeeded', 1]],
    );
    for (const st of s.status!.steps!) assert.ok(st.startedAt && st.endedAt, `${st.name} has its times`);
    assert.equal(cond(s, 'Completed')?.status, 'True');
    assert.equal(cond(s, 'Completed')?.reason, 'Succeeded');
    assert.equal(cond(s, 'Succeeded')?.status, 'True');
    assert.equal(cond(s, 'Completed')?.observedGeneration, 1);
    assert.equal(s.status!.currentStep, undefined);

    const events = await waitFor(async () => {
      const ev = await eventsFor(p, created.metadata.uid!);
      // Events are sent concurrently: wait for all eight (Started, 3 × StepRunning, 3 × StepSucceeded, Succeeded).
      return ev.some((e) => e.reason === 'Succeeded') && ev.length >= 8 ? ev : undefined;
    }, { what: 'the Succeeded Event and every step Event' });
    const reasons = events.map((e) => e.reason);
    assert.equal(reasons.filter((r) => r === 'StepRunning').length, 3);
    assert.equal(reasons.filter((r) => r === 'StepSucceeded').length, 3);
    assert.equal(reasons[0], 'Started');
    assert.equal(reasons.at(-1), 'Succeeded');
    assert.ok(events.every((e) => e.reportingController === 'sagamesh.io/operator'));

    const get = await kubectl(p, ['get', 'sagas']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^NAME\s+DEFINITION\s+PHASE\s+STEP\s+AGE\n/);
    assert.match(get.stdout, /ok-1\s+order-fulfillment\s+Succeeded\s+/);
    const describeOut = await kubectl(p, ['describe', 'saga', 'ok-1']);
    assert.match(describeOut.stdout, /StepSucceeded\s+.*step create-shipment succeeded/);
  });

  it('kubectl wait --for=condition=Completed returns when the Saga ends', async () => {
    await create(p, sagaObject('waited', { faults: slowSteps(300) }));
    const waited = await kubectl(p, ['wait', '--for=condition=Completed', 'saga/waited', '--timeout=60s']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /saga.sagamesh.io\/waited condition met/);
    const s = (await getSaga(p, 'waited'))!;
    assert.equal(s.status!.phase, 'Succeeded');
  });

  it('a failing step (per-run fault, failureRate 1) ends Compensated, compensations recorded in reverse order', async () => {
    const created = await create(p, sagaObject('fail-1', { faults: [{ target: 'shipping.create', failureRate: 1, latencyMs: 0, crashAfterCommit: false }] }));
    const s = await waitForSaga(p, 'fail-1', (x) => x.status?.phase === 'Compensated' && !x.metadata.finalizers?.length);
    const byName = Object.fromEntries(s.status!.steps!.map((st) => [st.name, st]));
    assert.equal(byName['create-shipment']!.status, 'Failed');
    assert.ok(byName['create-shipment']!.error, 'the failure is recorded');
    assert.equal(byName['charge-payment']!.status, 'Compensated');
    assert.equal(byName['reserve-inventory']!.status, 'Compensated');
    assert.ok(byName['charge-payment']!.compensatedAt! <= byName['reserve-inventory']!.compensatedAt!, 'charge is undone before the reservation');
    assert.equal(cond(s, 'Completed')?.status, 'True');
    assert.equal(cond(s, 'Completed')?.reason, 'Compensated');
    assert.equal(cond(s, 'Succeeded')?.status, 'False');

    const events = await waitFor(async () => {
      const ev = await eventsFor(p, created.metadata.uid!);
      // Events are sent concurrently: wait for all of them, then check their (recorded) order.
      const done = ev.some((e) => e.reason === 'Compensated') && ev.filter((e) => e.reason === 'StepCompensated').length >= 2;
      return done ? ev : undefined;
    }, { what: 'the Compensated and both StepCompensated Events' });
    const compensated = events.filter((e) => e.reason === 'StepCompensated').map((e) => e.note!.split(' ')[1]);
    assert.deepEqual(compensated, ['charge-payment', 'reserve-inventory']);
    assert.ok(events.some((e) => e.reason === 'StepFailed' && e.type === 'Warning' && /create-shipment/.test(e.note!)));
  });

  it('deleting a running Saga cancels its run, waits until it is Compensated, then lets it go', async () => {
    const created = await create(p, sagaObject('doomed', { faults: slowSteps(1500) }));
    const running = await waitForSaga(p, 'doomed', (x) => x.status?.currentStep === 'charge-payment');
    assert.ok(running.metadata.finalizers?.includes(SAGA_FINALIZER), 'a running Saga is protected by the finalizer');
    await deleteSaga(p, 'doomed');
    // Still there while it compensates: the finalizer holds it.
    const deleting = await getSaga(p, 'doomed');
    assert.ok(deleting?.metadata.deletionTimestamp);
    await waitFor(async () => (await getSaga(p, 'doomed')) === undefined, { timeoutMs: 60_000, what: 'the Saga to go' });
    const { run } = await engine.get({ runId: created.metadata.uid! });
    assert.equal(run.phase, 'Compensated');
    assert.equal(run.steps.find((st) => st.name === 'reserve-inventory')!.status, 'Compensated');
    const reasons = (await eventsFor(p, created.metadata.uid!)).map((e) => e.reason);
    assert.ok(reasons.includes('Cancelling'));
  });

  it('a compensation that gives up ends the Saga Failed (Completed=True, reason Failed), for a person to look at', async () => {
    const stubborn: SagaDefinitionSpec = { ...roomy, compensationRetry: { attempts: 2, backoff: { initial: '100ms', max: '200ms', multiplier: 2 } } };
    await create(p, definitionObject('stubborn', stubborn));
    const never = (target: string) => ({ target, failureRate: 1, latencyMs: 0, crashAfterCommit: false });
    await create(p, sagaObject('gives-up', { definitionRef: { name: 'stubborn' }, faults: [never('payments.charge'), never('inventory.release')] }));
    const s = await waitForSaga(p, 'gives-up', (x) => x.status?.phase === 'Failed' && !x.metadata.finalizers?.length);
    assert.equal(cond(s, 'Completed')?.status, 'True');
    assert.equal(cond(s, 'Completed')?.reason, 'Failed');
    assert.equal(cond(s, 'Succeeded')?.status, 'False');
    const reserve = s.status!.steps!.find((st) => st.name === 'reserve-inventory')!;
    assert.equal(reserve.status, 'CompensationFailed');
    assert.equal(reserve.compensationAttempts, 2);
    assert.match(s.status!.message!, /a person must look/);
  });

  it('a run keeps the definition revision it started with when the SagaDefinition changes', async () => {
    await create(p, definitionObject('evolving', roomy));
    const readyWith = async (pred: (rev: string) => boolean) =>
      waitFor(async () => {
        const d = await getDefinition(p, 'evolving');
        const ready = d.status?.conditions?.find((c) => c.type === 'Ready');
        const revision = d.status?.revision;
        return ready?.status === 'True' && d.status?.observedGeneration === d.metadata.generation && revision && pred(revision) ? revision : undefined;
      }, { timeoutMs: 30_000, what: 'the definition to be Ready' });
    const first = await readyWith(() => true);
    await create(p, sagaObject('pinned', { definitionRef: { name: 'evolving' }, faults: slowSteps(700) }));
    await waitForSaga(p, 'pinned', (x) => x.status?.phase === 'Running');
    await p.api.patchNamespacedCustomObject(
      { group: 'sagamesh.io', version: 'v1alpha1', namespace: 'default', plural: 'sagadefinitions', name: 'evolving', body: [{ op: 'replace', path: '/spec/deadline', value: '90s' }] },
    );
    const second = await readyWith((rev) => rev !== first);
    const done = await waitForSaga(p, 'pinned');
    assert.equal(done.status!.phase, 'Succeeded');
    assert.equal(done.status!.definitionRevision, first, 'pinned to the revision it started with');
    await create(p, sagaObject('unpinned', { definitionRef: { name: 'evolving' } }));
    assert.equal((await waitForSaga(p, 'unpinned')).status!.definitionRevision, second, 'a new run takes the new revision');
  });

  it('waits Pending while its SagaDefinition is missing, and runs once it appears', async () => {
    await create(p, sagaObject('early', { definitionRef: { name: 'late-definition' } }));
    const waiting = await waitForSaga(p, 'early', (x) => x.status?.phase === 'Pending' && !!x.status.message);
    assert.match(waiting.status!.message!, /waiting for SagaDefinition late-definition: there is none in namespace default/);
    assert.equal(cond(waiting, 'Completed')?.status, 'False');
    await create(p, definitionObject('late-definition', roomy));
    const done = await waitForSaga(p, 'early');
    assert.equal(done.status!.phase, 'Succeeded');
  });
});
