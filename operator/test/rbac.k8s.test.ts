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
import { SAGA_FINALIZER, orderFulfillmentDefinition, sagameshCrds, type SagaDefinitionSpec } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/kit/testing';
import { create, definitionObject, deleteSaga, eventsFor, getSaga, sagaObject, startOperatorInProcess, startPlatform, waitForSaga, type Platform } from './harness.ts';

type Obj = KubernetesObject & { metadata: { name: string; namespace?: string }; subjects?: { kind: string; name: string; namespace: string }[]; rules?: { resourceNames?: string[] }[] };
const roomy: SagaDefinitionSpec = { ...structuredClone(orderFulfillmentDefinition), steps: orderFulfillmentDefinition.steps.map((s) => ({ ...s, timeout: '10s' })) };

let p: Platform;
let operator: { stop(): Promise<void> };
let leaseNamespace: string;
let leaseName: string;

before(async () => {
  p = await startPlatform();
  const objects = synthPlatform({ ...PLATFORM_DEFAULTS, crds: sagameshCrds(), dashboards: [] }).flatMap((f) => f.objects as unknown as Obj[]);
  const rbac = objects.filter((o) => ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind!) && o.metadata.name === 'sagamesh-operator');
  assert.equal(rbac.length, 4, 'the cdk8s app grants the operator a ClusterRole, a Role and their bindings');
  const subject = rbac.find((o) => o.kind === 'RoleBinding')!.subjects![0]!;
  leaseNamespace = subject.namespace;
  leaseName = rbac.find((o) => o.kind === 'Role')!.rules!.find((r) => r.resourceNames)!.resourceNames![0]!;

  const client = KubernetesObjectApi.makeApiClient(p.kc);
  const namespace = objects.find((o) => o.kind === 'Namespace' && o.metadata.name === leaseNamespace)!;
  const serviceAccount = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === subject.name && o.metadata.namespace === leaseNamespace)!;
  for (const o of [namespace, serviceAccount, ...rbac]) await client.create(o);

  // A token of that service account, as a pod of the operator would mount.
  const request = await p.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name: subject.name, namespace: leaseNamespace, body: { spec: { expirationSeconds: 3600 } } });
  const token = request.status?.token;
  assert.ok(token, 'a service-account token');
  const kubeconfig = path.join(path.dirname(p.rig.kubeconfigPath), 'operator-sa.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(p.rig.kubeconfigPath, 'utf8').replace(p.rig.token, token), { mode: 0o600 });
  operator = await startOperatorInProcess(p, { KUBECONFIG: kubeconfig, LEASE_NAMESPACE: leaseNamespace, LEASE_NAME: leaseName });
});
after(async () => {
  await operator?.stop();
  await p?.stop();
});

describe('the operator under the RBAC the cdk8s app grants it', () => {
  it('registers definitions, runs a Saga to the end with Events, holds its Lease, and compensates a deleted one', async () => {
    await create(p, definitionObject('order-fulfillment', roomy));
    const ok = await create(p, sagaObject('rbac-ok'));
    await waitForSaga(p, 'rbac-ok', (s) => s.status?.phase === 'Succeeded' && !s.metadata.finalizers?.length);
    await waitFor(async () => (await eventsFor(p, ok.metadata.uid!)).some((e) => e.reason === 'Succeeded'), { what: 'the Events' });
    const lease = await p.leases.readNamespacedLease({ name: leaseName, namespace: leaseNamespace });
    assert.ok(lease.spec?.holderIdentity, 'the Lease is held');

    const slow = ['inventory.reserve', 'payments.charge', 'shipping.create'].map((target) => ({ target, failureRate: 0, latencyMs: 1000, crashAfterCommit: false }));
    await create(p, sagaObject('rbac-deleted', { faults: slow }));
    const running = await waitForSaga(p, 'rbac-deleted', (s) => s.status?.phase === 'Running' && !!s.metadata.finalizers?.includes(SAGA_FINALIZER));
    assert.ok(running);
    await deleteSaga(p, 'rbac-deleted');
    await waitFor(async () => (await getSaga(p, 'rbac-deleted')) === undefined, { timeoutMs: 60_000, what: 'the deleted Saga to go' });
  });
});
