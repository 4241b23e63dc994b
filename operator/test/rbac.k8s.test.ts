/**
 * The operator with exactly the RBAC the cdk8s app grants it (synthesized, applied to the real API
 * server) and a real service-account token: everything it does — lists, watches, finalizers, status,
 * Events, its Lease — is allowed, so the deployed operator cannot fail on a forbidden request.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { PLATFORM_DEFAULTS, synthPlatform } from '@sagamesh/cdk8s';
import { SAGA_FINALIZER, sagameshCrds } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/testing';
import { create, definitionObject, deleteSaga, eventsFor, getSaga, sagaObject, startOperatorInProcess, startPlatform, waitForSaga, type Platform } from './harness.ts';
import { builtinWithStepTimeout, slowSteps } from './fixtures.ts';

type Obj = KubernetesObject & { metadata: { name: string; namespace?: string }; subjects?: { kind: string; name: string; namespace: string }[]; rules?: { resourceNames?: string[] }[] };

let p: Platform;
let operator: { stop(): Promise<void> };
/** The Lease the cdk8s app lets the operator hold (named in its Role). */
let lease: { namespace: string; name: string };

before(async () => {
  p = await startPlatform();
  const objects = synthPlatform({ ...PLATFORM_DEFAULTS, crds: sagameshCrds(), dashboards: [] }).flatMap((f) => f.objects as unknown as Obj[]);
  const rbac = objects.filter((o) => ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind!) && o.metadata.name === 'sagamesh-operator');
  assert.equal(rbac.length, 4, 'the cdk8s app grants the operator a ClusterRole, a Role and their bindings');
  const subject = rbac.find((o) => o.kind === 'RoleBinding')!.subjects![0]!;
  lease = { namespace: subject.namespace, name: rbac.find((o) => o.kind === 'Role')!.rules!.find((r) => r.resourceNames)!.resourceNames![0]! };

  const client = KubernetesObjectApi.makeApiClient(p.kc);
  const namespace = objects.find((o) => o.kind === 'Namespace' && o.metadata.name === lease.namespace)!;
  const serviceAccount = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === subject.name && o.metadata.namespace === lease.namespace)!;
  for (const o of [namespace, serviceAccount, ...rbac]) await client.create(o);

  // A token of that service account, as a pod of the operator would mount.
  const request = await p.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name: subject.name, namespace: lease.namespace, body: { spec: { expirationSeconds: 3600 } } });
  const token = request.status?.token;
  assert.ok(token, 'a service-account token');
  const kubeconfig = path.join(path.dirname(p.rig.kubeconfigPath), 'operator-sa.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(p.rig.kubeconfigPath, 'utf8').replace(p.rig.token, token), { mode: 0o600 });
  operator = await startOperatorInProcess(p, { KUBECONFIG: kubeconfig, LEASE_NAMESPACE: lease.namespace, LEASE_NAME: lease.name });
});
after(async () => {
  await operator?.stop();
  await p?.stop();
});

describe('the operator under the RBAC the cdk8s app grants it', () => {
  it('registers definitions, runs a Saga to the end with Events, holds its Lease, and compensates a deleted one', async () => {
    await create(p, definitionObject('order-fulfillment', builtinWithStepTimeout('10s')));
    const ok = await create(p, sagaObject('rbac-ok'));
    await waitForSaga(p, 'rbac-ok', (s) => s.status?.phase === 'Succeeded' && !s.metadata.finalizers?.length);
    await waitFor(async () => (await eventsFor(p, ok.metadata.uid!)).some((e) => e.reason === 'Succeeded'), { what: 'the Events' });
    const held = await p.leases.readNamespacedLease(lease);
    assert.ok(held.spec?.holderIdentity, 'the Lease is held');

    await create(p, sagaObject('rbac-deleted', { faults: slowSteps(1000) }));
    const running = await waitForSaga(p, 'rbac-deleted', (s) => s.status?.phase === 'Running' && !!s.metadata.finalizers?.includes(SAGA_FINALIZER));
    assert.ok(running);
    await deleteSaga(p, 'rbac-deleted');
    await waitFor(async () => (await getSaga(p, 'rbac-deleted')) === undefined, { timeoutMs: 60_000, what: 'the deleted Saga to go' });
  });
});
