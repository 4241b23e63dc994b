/** The operator's Kubernetes writes on a real API server: optimistic, status-only, idempotent Events. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SAGA_FINALIZER, type SagaObject } from '@sagamesh/contracts';
import { ConflictError, KubeApi } from '../src/kube.ts';
import { NS, create, eventsFor, getSaga, sagaObject, startPlatform, type Platform } from './harness.ts';

let p: Platform;
let kube: KubeApi;
before(async () => {
  p = await startPlatform({ engine: false });
  kube = new KubeApi(p.kc, 'test-replica');
});
after(async () => p?.stop());

describe('KubeApi', () => {
  it('writes the status through /status only: a spec in the same body is ignored', async () => {
    const s = await create(p, sagaObject('status-only'));
    const changed = { ...s, spec: { ...s.spec, input: { tampered: true } } };
    const next = (await kube.replaceStatus('Saga', changed, { phase: 'Pending', message: 'waiting' }))!;
    assert.equal(next.status?.phase, 'Pending');
    assert.deepEqual((await getSaga(p, 'status-only'))!.spec.input, s.spec.input);
  });

  it('a status write from a stale read is a ConflictError, not a lost update', async () => {
    const s = await create(p, sagaObject('stale'));
    await kube.setFinalizers('Saga', s, [SAGA_FINALIZER]); // someone else wrote meanwhile
    await assert.rejects(kube.replaceStatus('Saga', s, { phase: 'Running' }), ConflictError);
    await assert.rejects(kube.setFinalizers('Saga', s, []), ConflictError);
    const fresh = (await kube.get<SagaObject>('Saga', NS, 'stale'))!;
    assert.deepEqual(fresh.metadata.finalizers, [SAGA_FINALIZER]);
    assert.equal((await kube.replaceStatus('Saga', fresh, { phase: 'Running' }))!.status?.phase, 'Running');
  });

  it('writes to an object that is gone answer undefined', async () => {
    const s = await create(p, sagaObject('gone'));
    await p.api.deleteNamespacedCustomObject({ group: 'sagamesh.io', version: 'v1alpha1', namespace: NS, plural: 'sagas', name: 'gone' });
    assert.equal(await kube.replaceStatus('Saga', s, { phase: 'Running' }), undefined);
    assert.equal(await kube.get('Saga', NS, 'gone'), undefined);
  });

  it('records an Event once per transition key, however often it is recorded', async () => {
    const s = await create(p, sagaObject('evented'));
    const event = { key: 'step.a.Succeeded.1', type: 'Normal' as const, reason: 'StepSucceeded', note: 'step a succeeded (attempt 1)' };
    await kube.recordEvent('Saga', s, event);
    await kube.recordEvent('Saga', s, event);
    await kube.recordEvent('Saga', s, { ...event, key: 'phase.Succeeded', reason: 'Succeeded', note: 'saga succeeded' });
    const events = await eventsFor(p, s.metadata.uid!);
    assert.deepEqual(events.map((e) => e.reason), ['StepSucceeded', 'Succeeded']);
    assert.equal(events[0]!.regarding?.name, 'evented');
    assert.equal(events[0]!.reportingInstance, 'test-replica');
  });

  it('lists every object across pages', async () => {
    for (let i = 0; i < 5; i++) await create(p, sagaObject(`paged-${i}`));
    const all = (await p.api.listNamespacedCustomObject({ group: 'sagamesh.io', version: 'v1alpha1', namespace: NS, plural: 'sagas' })) as { items: SagaObject[] };
    const list = await new KubeApi(p.kc, 'test-replica', { pageSize: 2 }).list<SagaObject>('Saga');
    assert.deepEqual(list.items.map((s) => s.metadata.uid).sort(), all.items.map((s) => s.metadata.uid).sort());
    assert.ok(list.items.length > 2 * 2, 'more than two pages');
    assert.match(list.metadata.resourceVersion, /^\d+$/);
  });
});
