/**
 * The offline add-ons (addons-offline.yaml) on a real kube-apiserver (etcd + kube-apiserver from .tools/bin):
 * every object passes a server-side dry-run, each service account can do exactly what its job needs and no
 * more (the RBAC authorizer asked with `kubectl auth can-i --as`), and the pods pass the `restricted` Pod
 * Security profile that the monitoring namespace enforces.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type KubeRig, startKubeRig } from '@sagamesh/testing';
import { Yaml } from 'cdk8s';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';
import { addonImages, parseVersionsEnv, synthOfflineAddons } from '../src/addons/index.ts';
import { readRuleFiles } from '../src/main.ts';
import { synthPlatform } from '../src/platform.ts';
import { type K8sObject, RULES_DIR, testConfig } from './helpers.ts';

const run = promisify(execFile);
let rig: KubeRig;
let dir: string;
let addons: K8sObject[];

async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(toolPath('kubectl'), ['--kubeconfig', rig.kubeconfigPath, ...args], { maxBuffer: 16 * 1024 * 1024 });
}
function write(name: string, objects: readonly unknown[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, Yaml.stringify(...objects));
  return file;
}
/** The RBAC authorizer's answer for a service account (`kubectl auth can-i` exits 1 on "no"). */
async function can(sa: string, ...args: string[]): Promise<boolean> {
  try {
    await kubectl('auth', 'can-i', ...args, `--as=system:serviceaccount:${sa}`);
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 1) return false;
    throw err;
  }
}

describe('offline add-ons on a real kube-apiserver', () => {
  before(async () => {
    rig = await startKubeRig({ crds: false });
    dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-addons-k8s-'));
    const platform = synthPlatform(testConfig());
    const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
    addons = synthOfflineAddons({ images: addonImages(versions), platformObjects: platform.flatMap((f) => f.objects), ruleFiles: readRuleFiles(RULES_DIR) }).objects as K8sObject[];
    // The platform's namespaces exist first (make up applies addons-offline.yaml after them): Prometheus' Role lives there.
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', write('01-namespace.yaml', platform.find((f) => f.file === '01-namespace.yaml')!.objects));
  });
  after(async () => {
    await rig?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every object of addons-offline.yaml passes a server-side dry-run, then applies', async () => {
    const file = write('addons-offline.yaml', addons);
    // A dry-run creates nothing, so the namespace the file starts with must exist for the rest to be checked.
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', write('monitoring-ns.yaml', addons.filter((o) => o.kind === 'Namespace')));
    const { stdout } = await kubectl('apply', '--server-side', '--field-manager=sagamesh', '--dry-run=server', '--validate=strict', '-f', file);
    assert.equal(stdout.split('\n').filter((l) => l.includes('serverside-applied (server dry run)')).length, addons.length, stdout);
    assert.match(stdout, /apiservice\.apiregistration\.k8s\.io\/v1beta1\.metrics\.k8s\.io serverside-applied/);
    // Applied for real without the APIService: with no metrics-server behind it, discovery would report it unavailable.
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', write('addons-no-apiservice.yaml', addons.filter((o) => o.kind !== 'APIService')));
  });

  it('Prometheus may discover pods only where it scrapes, read nodes and nodes/metrics; nothing else', async () => {
    const sa = 'monitoring:prometheus';
    assert.equal(await can(sa, 'list', 'pods', '-n', 'sagamesh'), true);
    assert.equal(await can(sa, 'watch', 'pods', '-n', 'monitoring'), true);
    assert.equal(await can(sa, 'list', 'nodes'), true);
    assert.equal(await can(sa, 'get', 'nodes', '--subresource=metrics'), true);
    assert.equal(await can(sa, 'list', 'pods', '-n', 'kube-system'), false);
    assert.equal(await can(sa, 'get', 'nodes', '--subresource=proxy'), false);
    assert.equal(await can(sa, 'get', 'secrets', '-n', 'sagamesh'), false);
    assert.equal(await can(sa, 'delete', 'pods', '-n', 'sagamesh'), false);
  });

  it('kube-state-metrics may list and watch the objects it reports on; not Secrets or ConfigMaps, no writes', async () => {
    const sa = 'monitoring:kube-state-metrics';
    for (const r of ['horizontalpodautoscalers.autoscaling', 'deployments.apps', 'pods', 'statefulsets.apps', 'nodes']) assert.equal(await can(sa, 'list', r, '-A'), true, r);
    assert.equal(await can(sa, 'list', 'secrets', '-A'), false);
    assert.equal(await can(sa, 'list', 'configmaps', '-A'), false);
    assert.equal(await can(sa, 'patch', 'deployments.apps', '-n', 'sagamesh'), false);
  });

  it('metrics-server may read pods, nodes and nodes/metrics, and delegate authentication; not Secrets', async () => {
    const sa = 'kube-system:metrics-server';
    assert.equal(await can(sa, 'get', 'nodes', '--subresource=metrics'), true);
    assert.equal(await can(sa, 'list', 'pods', '-A'), true);
    assert.equal(await can(sa, 'create', 'tokenreviews.authentication.k8s.io'), true);
    assert.equal(await can(sa, 'create', 'subjectaccessreviews.authorization.k8s.io'), true);
    assert.equal(await can(sa, 'get', 'configmaps/extension-apiserver-authentication', '-n', 'kube-system'), true);
    assert.equal(await can(sa, 'list', 'secrets', '-n', 'kube-system'), false);
    assert.equal(await can(sa, 'get', 'nodes', '--subresource=proxy'), false);
  });

  it('the add-on pods pass the `restricted` profile the monitoring namespace enforces, which refuses a weaker pod', async () => {
    const pods = addons.filter((o) => o.kind === 'Deployment').map((d) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: d.metadata.name, namespace: 'monitoring', labels: d.spec.template.metadata.labels },
      // In the enforcing namespace, under a service account that exists there (no controller makes `default` here).
      spec: { ...d.spec.template.spec, serviceAccountName: 'prometheus', priorityClassName: undefined },
    }));
    const { stdout, stderr } = await kubectl('apply', '--server-side', '--field-manager=sagamesh', '--dry-run=server', '-f', write('pods.yaml', pods));
    assert.equal(stdout.split('\n').filter((l) => l.includes('serverside-applied (server dry run)')).length, pods.length, stdout);
    assert.doesNotMatch(stderr, /violate PodSecurity/);
    const weak = structuredClone(pods[0]!) as any;
    weak.metadata.name = 'weak';
    delete weak.spec.containers[0].securityContext.capabilities;
    await assert.rejects(kubectl('apply', '--server-side', '--field-manager=sagamesh', '--dry-run=server', '-f', write('weak.yaml', [weak])), /violates PodSecurity "restricted:latest": unrestricted capabilities/);
  });
});
