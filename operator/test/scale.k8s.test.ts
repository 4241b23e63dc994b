/**
 * 200 Sagas applied at once all end, and the operator's writes stay bounded per Saga: it writes a
 * status only when what it shows changed. Writes are counted from the API server's audit log (not
 * timed); the wall time is printed, for information only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SAGAMESH_GROUP, SAGAMESH_VERSION, type SagaObject } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/testing';
import { NS, TERMINAL, auditedWrites, create, definitionObject, sagaObject, startOperatorInProcess, startPlatform, type Platform } from './harness.ts';
import { builtinWithStepTimeout } from './fixtures.ts';

const COUNT = 200;
/** Phases Running and Succeeded, and each of the 3 steps Running then Succeeded: at most 8 different statuses. */
const MAX_STATUS_WRITES = 8;

let p: Platform;
let operator: { stop(): Promise<void>; port: number };
before(async () => {
  p = await startPlatform({ rig: { auditLog: true, users: ['operator'] } });
  operator = await startOperatorInProcess(p, { KUBECONFIG: p.rig.kubeconfigFor('operator'), WORKERS: '8', RESYNC_MS: '60000' });
  await create(p, definitionObject('order-fulfillment', builtinWithStepTimeout('20s')));
  await waitFor(async () => {
    const d = (await p.api.getNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagadefinitions', name: 'order-fulfillment' })) as { status?: { revision?: string } };
    return d.status?.revision;
  }, { timeoutMs: 30_000, what: 'the definition to be registered' });
});
after(async () => {
  await operator?.stop();
  await p?.stop();
});

describe(`${COUNT} Sagas at once`, () => {
  it('all reach a terminal phase, with a bounded number of writes per Saga', async () => {
    const names = Array.from({ length: COUNT }, (_, i) => `bulk-${i}`);
    const t0 = performance.now();
    // Applied as fast as the API server takes them (20 requests in flight).
    for (let i = 0; i < names.length; i += 20) await Promise.all(names.slice(i, i + 20).map((n) => create(p, sagaObject(n))));
    const applied = performance.now();
    const sagas = await waitFor(async () => {
      const list = (await p.api.listNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagas' })) as { items: SagaObject[] };
      const ended = list.items.filter((s) => TERMINAL.includes(s.status?.phase ?? '') && !s.metadata.finalizers?.length);
      return ended.length === COUNT ? list.items : undefined;
    }, { timeoutMs: 300_000, intervalMs: 500, what: `${COUNT} Sagas to end` });
    const wall = performance.now() - t0;

    const phases = Object.groupBy(sagas, (s) => s.status!.phase!);
    const writes = auditedWrites(p.rig).filter((e) => e.user.username === 'operator' && e.objectRef?.resource === 'sagas');
    const perSaga = new Map<string, { status: number; metadata: number }>(names.map((n) => [n, { status: 0, metadata: 0 }]));
    for (const w of writes) {
      const c = perSaga.get(w.objectRef!.name!);
      if (c) c[w.objectRef!.subresource === 'status' ? 'status' : 'metadata']++;
    }
    const statusWrites = [...perSaga.values()].map((c) => c.status);
    const metadataWrites = [...perSaga.values()].map((c) => c.metadata);
    const metrics = await (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text();
    const metric = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    const reconciles = metric(/^sagamesh_operator_reconcile_duration_seconds_count\{kind="Saga"\} (\S+)$/m);
    const seconds = metric(/^sagamesh_operator_reconcile_duration_seconds_sum\{kind="Saga"\} (\S+)$/m);
    console.log(
      `# ${COUNT} Sagas: applied in ${(applied - t0).toFixed(0)} ms, all ended in ${(wall / 1000).toFixed(1)} s wall time; ` +
        `${reconciles} Saga reconciles, ${((seconds / reconciles) * 1000).toFixed(1)} ms each on average; ` +
        `phases ${JSON.stringify(Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, v!.length])))}; ` +
        `status writes per Saga: mean ${(statusWrites.reduce((a, b) => a + b, 0) / COUNT).toFixed(2)}, max ${Math.max(...statusWrites)}; ` +
        `finalizer writes per Saga: max ${Math.max(...metadataWrites)}`,
    );
    assert.equal(phases.Succeeded?.length, COUNT, 'no fault was injected: every run succeeds');
    for (const [name, c] of perSaga) {
      assert.ok(c.status >= 1 && c.status <= MAX_STATUS_WRITES, `${name}: ${c.status} status writes`);
      assert.equal(c.metadata, 2, `${name}: the finalizer is added once and removed once`);
    }
  });
});
