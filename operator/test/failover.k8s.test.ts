/**
 * The operator as real processes (operator/src/main.ts), SIGKILLed on purpose: a restarted operator
 * finishes what the dead one followed, without running a step twice; of two replicas only the Lease
 * holder writes, and the other takes over when the holder dies or steps down.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CeHeaders, type SagaEvent, Subjects } from '@sagamesh/contracts';
import { connectNats, createLogger, type NatsConnection } from '@sagamesh/runtime';
import { waitFor } from '@sagamesh/testing';
import { auditedWrites, create, definitionObject, sagaObject, spawnOperator, startPlatform, waitForSaga, type OperatorProcess, type Platform } from './harness.ts';
import { builtinWithStepTimeout, slowSteps } from './fixtures.ts';

const LEASE = { name: 'sagamesh-operator', namespace: 'default' };

let p: Platform;
let nc: NatsConnection;
const operators: OperatorProcess[] = [];

async function operator(user: string): Promise<OperatorProcess> {
  const o = await spawnOperator(p, user, { KUBECONFIG: p.rig.kubeconfigFor(user) }, path.join(path.dirname(p.rig.kubeconfigPath), `${user}.log`));
  operators.push(o);
  return o;
}
const holder = async () => (await p.leases.readNamespacedLease(LEASE)).spec?.holderIdentity;
const writesBy = (user: string, name?: string) =>
  auditedWrites(p.rig).filter((e) => e.user.username === user && e.objectRef?.resource === 'sagas' && (name === undefined || e.objectRef.name === name));
const isLeaderMetric = async (o: OperatorProcess) => /^sagamesh_operator_is_leader 1$/m.test(await (await fetch(`http://127.0.0.1:${o.port}/metrics`)).text());

/**
 * The engine's progress events of each k8s run, as published (SAGA_EVENTS keeps only the latest per run, so they are
 * read live, from the start); an event the engine published again (JetStream stores it once) is counted once.
 */
const published = new Map<string, SagaEvent[]>();
const seenIds = new Set<string>();
const runEvents = async (runId: string): Promise<SagaEvent[]> => published.get(runId) ?? [];

before(async () => {
  p = await startPlatform({ rig: { auditLog: true, users: ['operator-a', 'operator-b', 'operator-c', 'operator-d'] } });
  nc = await connectNats({ servers: p.nats!.url, name: 'test', log: createLogger('test', 'warn') });
  nc.subscribe(Subjects.sagaEventsOf('k8s'), {
    callback: (err, m) => {
      if (err) return;
      const id = m.headers?.get(CeHeaders.id) ?? '';
      if (seenIds.has(id)) return;
      seenIds.add(id);
      const runId = m.subject.slice(Subjects.sagaEventsOf('k8s').length - 1);
      published.set(runId, [...(published.get(runId) ?? []), m.json<SagaEvent>()]);
    },
  });
  await nc.flush();
  await create(p, definitionObject('order-fulfillment', builtinWithStepTimeout('10s')));
});

after(async () => {
  for (const o of operators) await o.kill();
  await nc?.drain();
  await p?.stop();
});

describe('operator processes', () => {
  it('an operator SIGKILLed mid-saga is replaced, and the run finishes with no step run twice', async () => {
    const a = await operator('operator-a');
    const created = await create(p, sagaObject('crash-1', { faults: slowSteps(1000) }));
    await waitForSaga(p, 'crash-1', (s) => s.status?.currentStep === 'charge-payment');
    await a.kill();
    const c = await operator('operator-c');
    const done = await waitForSaga(p, 'crash-1', (s) => s.status?.phase === 'Succeeded' && !s.metadata.finalizers?.length, 60_000);
    assert.deepEqual(done.status!.steps!.map((s) => [s.name, s.status, s.attempts]), [
      ['reserve-inventory', 'Succeeded', 1],
      ['charge-payment', 'Succeeded', 1],
      ['create-shipment', 'Succeeded', 1],
    ]);
    const started = (await runEvents(created.metadata.uid!)).filter((e) => e.event === 'step_started').map((e) => e.step);
    assert.deepEqual(started, ['reserve-inventory', 'charge-payment', 'create-shipment'], 'each step started once');
    assert.ok(writesBy('operator-c', 'crash-1').length > 0, 'the new operator finished the status');
    assert.equal(await holder(), c.identity);
  });

  it('of two replicas only the Lease holder writes; killing it hands over to the other', async () => {
    const c = operators.find((o) => o.identity === 'operator-c')!;
    const b = await operator('operator-b');
    assert.equal(await holder(), 'operator-c');
    assert.equal(await isLeaderMetric(b), false);

    await create(p, sagaObject('ha-1'));
    await waitForSaga(p, 'ha-1', (s) => s.status?.phase === 'Succeeded' && !s.metadata.finalizers?.length);
    assert.ok(writesBy('operator-c', 'ha-1').length > 0);
    assert.equal(writesBy('operator-b').length, 0, 'the standby wrote nothing');

    const before = (await p.leases.readNamespacedLease(LEASE)).spec!.leaseTransitions ?? 0;
    await c.kill();
    await waitFor(async () => (await holder()) === 'operator-b', { timeoutMs: 20_000, what: 'operator-b to take the lease' });
    assert.equal((await p.leases.readNamespacedLease(LEASE)).spec!.leaseTransitions, before + 1);
    assert.equal(await isLeaderMetric(b), true);

    await create(p, sagaObject('ha-2'));
    await waitForSaga(p, 'ha-2', (s) => s.status?.phase === 'Succeeded' && !s.metadata.finalizers?.length);
    const writers = new Set(auditedWrites(p.rig).filter((e) => e.objectRef?.resource === 'sagas' && e.objectRef.name === 'ha-2' && e.user.username.startsWith('operator-')).map((e) => e.user.username));
    assert.deepEqual([...writers], ['operator-b']);
  });

  it('a replica stopped gracefully releases the lease (no holder), and the next one takes it', async () => {
    const b = operators.find((o) => o.identity === 'operator-b')!;
    await b.stop();
    assert.equal(b.proc.exitCode, 0);
    const lease = await p.leases.readNamespacedLease(LEASE);
    assert.equal(lease.spec?.holderIdentity, undefined, 'released');
    await operator('operator-d');
    await waitFor(async () => (await holder()) === 'operator-d', { timeoutMs: 20_000, what: 'operator-d to take the released lease' });
  });
});
