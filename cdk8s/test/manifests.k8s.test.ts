/**
 * The synthesized files, the CRDs and examples/*.yaml against a real kube-apiserver (etcd + kube-apiserver
 * from .tools/bin via startKubeRig): `kubectl apply --server-side --dry-run=server --validate=strict`, CRDs
 * first, then the namespaces, then 02-platform.yaml whole — as on a cluster without Linkerd and
 * prometheus-operator, which this server is: their files (03-linkerd, 04-prometheus-operator) are refused
 * here, which is why they are apart; their kinds are validated against schemas in platform.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sagameshCrds } from '@sagamesh/contracts';
import { type KubeRig, startKubeRig } from '@sagamesh/testing';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';
import { Yaml } from 'cdk8s';
import { parseVersionsEnv } from '../src/addons/index.ts';
import { parseSynthArgs, platformConfig, readDashboards, readRuleFiles } from '../src/main.ts';
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
function file(name: string): SynthFile {
  const f = files.find((x) => x.file === name);
  if (!f) throw new Error(`no ${name} among ${files.map((x) => x.file).join(', ')}`);
  return f;
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

  it('the namespaces pass a dry-run, then are created', async () => {
    const nsFile = write(files[1]!.file, files[1]!.objects);
    const out = await dryRun(nsFile);
    assert.match(out, /namespace\/sagamesh serverside-applied \(server dry run\)/);
    assert.match(out, /namespace\/nats serverside-applied \(server dry run\)/);
    await kubectl('apply', '--server-side', '--field-manager=sagamesh', '-f', nsFile);
  });

  it('02-platform.yaml applies whole on a cluster with no Linkerd and no prometheus-operator: every object passes a dry-run', async () => {
    const platform = file('02-platform.yaml');
    const kinds = new Set((platform.objects as { kind: string }[]).map((o) => o.kind));
    for (const k of ['Deployment', 'StatefulSet', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy']) assert.ok(kinds.has(k), k);
    assert.equal((platform.objects as { kind: string }[]).filter((o) => o.kind === 'Deployment').length, 8, 'every workload is server-checked');
    // The file as written, as `make up OFFLINE=1` applies it.
    const out = await dryRun(write(platform.file, platform.objects));
    const applied = out.split('\n').filter((l) => l.includes('serverside-applied (server dry run)'));
    assert.equal(applied.length, platform.objects.length, out);
    assert.match(out, /statefulset\.apps\/nats serverside-applied/);
  });

  it('the offline synthesis (images never pulled, fault injection on) passes the same dry-run', async () => {
    const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
    const inputs = { crds: sagameshCrds(), dashboards: [], ruleFiles: [] };
    const offline = synthPlatform(platformConfig(parseSynthArgs(['--offline', '--faults']), versions, inputs)).find((f) => f.file === '02-platform.yaml')!;
    const out = await dryRun(write('02-platform-offline.yaml', offline.objects));
    assert.equal(out.split('\n').filter((l) => l.includes('serverside-applied (server dry run)')).length, offline.objects.length, out);
  });

  it('the CRD-backed files are refused by a server without their CRDs (why they are apart), and name exactly those CRDs', async (t) => {
    const { stdout } = await kubectl('get', 'crd', '-o', 'name');
    const installed = new Set(stdout.split('\n').filter(Boolean).map((l) => l.replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, '')));
    const dependent = files.filter((f) => f.requires.length > 0);
    assert.deepEqual(dependent.map((f) => f.file), ['03-linkerd.yaml', '04-prometheus-operator.yaml']);
    for (const f of dependent) {
      assert.ok(f.requires.every((crd) => !installed.has(crd)), `${f.file}: this server has none of ${f.requires.join(', ')}`);
      await assert.rejects(dryRun(write(f.file, f.objects)), /no matches for kind|ensure CRDs are installed first/, f.file);
      t.diagnostic(`${f.file}: refused without ${f.requires.join(', ')} (kinds validated in platform.test.ts)`);
    }
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
    const workloads = file('02-platform.yaml').objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet') as any[];
    assert.ok(workloads.some((w) => w.kind === 'StatefulSet'), 'NATS too');
    const pods = workloads.map((d) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: d.metadata.name, namespace: 'psa-restricted', labels: d.spec.template.metadata.labels },
      // The pod as its controller would create it (a StatefulSet adds a claim per template), before
      // Linkerd's injector adds its sidecar.
      spec: {
        ...d.spec.template.spec,
        serviceAccountName: 'default',
        volumes: [
          ...(d.spec.template.spec.volumes ?? []),
          ...(d.spec.volumeClaimTemplates ?? []).map((t: any) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: `${t.metadata.name}-${d.metadata.name}-0` } })),
        ],
      },
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
    const deployment = (file('02-platform.yaml').objects as { kind: string }[]).find((o) => o.kind === 'Deployment')!;
    const broken = structuredClone(deployment) as any;
    broken.spec.template.spec.containers[0].readinessProbe.httpGett = broken.spec.template.spec.containers[0].readinessProbe.httpGet;
    await assert.rejects(dryRun(write('broken.yaml', [broken])), /readinessProbe\.httpGett: field not declared in schema/);
  });
});
