/**
 * Every synthesized object, the CRDs and examples/*.yaml against a real kube-apiserver (etcd +
 * kube-apiserver from .tools/bin via startKubeRig): `kubectl apply --server-side --dry-run=server
 * --validate=strict`, CRDs first, then the namespace. Kinds whose CRDs the rig does not have (Linkerd
 * policy, prometheus-operator) cannot be checked by this server: they are listed with the reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sagameshCrds } from '@sagamesh/contracts';
import { startKubeRig, type KubeRig } from '@sagamesh/kit/testing';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';
import { Yaml } from 'cdk8s';
import { readDashboards, readRuleFiles } from '../src/main.ts';
import { PLATFORM_DEFAULTS, synthPlatform, type SynthFile } from '../src/platform.ts';

const run = promisify(execFile);
const KUBECTL = toolPath('kubectl');

let rig: KubeRig;
let dir: string;
let files: SynthFile[];

async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(KUBECTL, ['--kubeconfig', rig.kubeconfigPath, ...args], { maxBuffer: 32 * 1024 * 1024 });
}
/** Server-side dry-run apply of one file; rejects with kubectl's message when the server refuses an object. */
async function dryRun(file: string): Promise<string> {
  const { stdout } = await kubectl('apply', '--server-side', '--field-manager=sagamesh', '--dry-run=server', '--validate=strict', '-f', file);
  return stdout;
}
function write(name: string, objects: readonly unknown[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, Yaml.stringify(...objects));
  return file;
}

describe('manifests on a real kube-apiserver (server-side dry-run)', () => {
  before(async () => {
    rig = await startKubeRig({ crds: false });
    dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-manifests-'));
    files = synthPlatform({
      ...PLATFORM_DEFAULTS,
      crds: sagameshCrds(),
      dashboards: readDashboards(path.join(REPO_ROOT, 'dashboards')),
      ruleFiles: readRuleFiles(path.join(REPO_ROOT, 'monitoring', 'rules')),
    });
  });
  after(async () => {
    await rig?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the CRDs pass a dry-run, then are created and become Established', async () => {
    const crdFile = write(files[0]!.file, files[0]!.objects);
    const out = await dryRun(crdFile);
    assert.match(out, /customresourcedefinition\.apiextensions\.k8s\.io\/sagas\.sagamesh\.io serverside-applied \(server dry run\)/);
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', crdFile);
    await kubectl('wait', '--for=condition=Established', '--timeout=60s', '-f', crdFile);
  });

  it('the namespace passes a dry-run, then is created', async () => {
    const nsFile = write(files[1]!.file, files[1]!.objects);
    assert.match(await dryRun(nsFile), /namespace\/sagamesh serverside-applied \(server dry run\)/);
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', nsFile);
  });

  it('every platform object whose kind this server serves passes a dry-run; the others are listed with the reason', async (t) => {
    const { stdout } = await kubectl('api-resources', '--no-headers', '-o', 'wide');
    const served = new Set(
      stdout.split('\n').filter(Boolean).map((line) => {
        const cols = line.trim().split(/\s+/);
        // NAME [SHORTNAMES] APIVERSION NAMESPACED KIND VERBS...: find APIVERSION by its position before true/false.
        const i = cols.findIndex((c) => c === 'true' || c === 'false');
        return `${cols[i - 1]}/${cols[i + 1]}`;
      }),
    );
    const objects = files[2]!.objects as { apiVersion: string; kind: string; metadata: { name: string } }[];
    const checkable = objects.filter((o) => served.has(`${o.apiVersion}/${o.kind}`));
    const unchecked = objects.filter((o) => !served.has(`${o.apiVersion}/${o.kind}`));
    for (const kind of new Set(unchecked.map((o) => `${o.apiVersion} ${o.kind}`))) {
      const names = unchecked.filter((o) => `${o.apiVersion} ${o.kind}` === kind).map((o) => o.metadata.name);
      const why = kind.startsWith('monitoring.coreos.com')
        ? 'its CRD comes with kube-prometheus-stack, not installed on this API server; validated against the prometheus-operator schema in platform.test.ts'
        : 'its CRD comes with the linkerd-crds chart, not installed on this API server; its shape is asserted in platform.test.ts';
      t.diagnostic(`not server-checked: ${kind} (${names.length}: ${names.join(', ')}) — ${why}`);
    }
    assert.ok(unchecked.every((o) => /^(policy\.linkerd\.io|monitoring\.coreos\.com)\//.test(o.apiVersion)), 'only CRD-backed third-party kinds may be unchecked');
    const uncheckedMonitoring = new Set(unchecked.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1').map((o) => o.kind));
    assert.deepEqual([...uncheckedMonitoring].sort(), ['PodMonitor', 'PrometheusRule'], 'the PodMonitors and the PrometheusRule are listed as not server-checked');
    assert.equal(checkable.filter((o) => o.kind === 'Deployment').length, 8, 'every workload is server-checked');
    const out = await dryRun(write('02-platform-checkable.yaml', checkable));
    const applied = out.split('\n').filter((l) => l.includes('serverside-applied (server dry run)'));
    assert.equal(applied.length, checkable.length, out);
  });

  it('examples/*.yaml (Saga and SagaDefinition resources) pass a dry-run against the generated CRDs', async (t) => {
    const examples = readdirSync(path.join(REPO_ROOT, 'examples')).filter((f) => /\.ya?ml$/.test(f)).sort();
    assert.ok(examples.length > 0, 'examples/ has YAML files');
    for (const f of examples) {
      const out = await dryRun(path.join(REPO_ROOT, 'examples', f));
      assert.match(out, /serverside-applied \(server dry run\)/, f);
      t.diagnostic(`${f}: ${out.trim().split('\n').join('; ')}`);
    }
  });

  it('every workload pod template passes Pod Security `restricted`, enforced by the API server', async () => {
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'psa-restricted', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } };
    // No controller-manager here to create the namespace's default ServiceAccount: create it.
    const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'psa-restricted' } };
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', write('psa-ns.yaml', [ns, sa]));
    const deployments = (files[2]!.objects as any[]).filter((o) => o.kind === 'Deployment');
    const pods = deployments.map((d) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: d.metadata.name, namespace: 'psa-restricted', labels: d.spec.template.metadata.labels },
      // The pod as the ReplicaSet would create it, before Linkerd's injector adds its sidecar.
      spec: { ...d.spec.template.spec, serviceAccountName: 'default' },
    }));
    const { stdout, stderr } = await kubectl('apply', '--server-side', '--field-manager=sagamesh', '--dry-run=server', '-f', write('psa-pods.yaml', pods));
    assert.equal(stdout.split('\n').filter((l) => l.includes('serverside-applied (server dry run)')).length, pods.length, stdout);
    assert.doesNotMatch(stderr, /violate PodSecurity/);
    const unsafe = structuredClone(pods[0]!);
    unsafe.metadata.name = 'unsafe';
    unsafe.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
    await assert.rejects(dryRun(write('psa-unsafe.yaml', [unsafe])), /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  });

  it('the server does refuse a bad object (so these checks can fail)', async () => {
    const deployment = (files[2]!.objects as { kind: string }[]).find((o) => o.kind === 'Deployment')!;
    const broken = structuredClone(deployment) as any;
    broken.spec.template.spec.containers[0].readinessProbe.httpGett = broken.spec.template.spec.containers[0].readinessProbe.httpGet;
    await assert.rejects(dryRun(write('broken.yaml', [broken])), /readinessProbe\.httpGett: field not declared in schema/);
  });
});
