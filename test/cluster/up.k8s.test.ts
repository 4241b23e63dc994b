/**
 * The plans of `make up DRY_RUN=1` (online: every step, in order, every chart pinned) and `make up OFFLINE=1
 * DRY_RUN=1` (no chart, no pull: images built here, the network cut off first), the kind config, the Linkerd
 * certificates (really generated with openssl and verified), and `make down`'s plan. The offline path itself runs for
 * real in the cluster tier (`make test-cluster`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { NatsIdentities, ServiceNames } from '@sagamesh/contracts';
import { parse } from 'yaml';
import { PLATFORM_DEFAULTS } from '../../cdk8s/src/platform.ts';
import { pinnedCharts, readEnvFile } from './support.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);
const tools = readEnvFile('tools/versions.env');
const chartVersions = readEnvFile('charts/versions.env');

async function make(...args: string[]): Promise<string> {
  // A throwaway state dir: the dry run must not touch the real .dev/cluster either. `-o`: the target's prerequisites
  // (npm ci, make tools) are taken as done — an npm ci under the running tests would pull node_modules from under them.
  const { stdout } = await run('make', ['--no-print-directory', '-o', 'node_modules/.installed', '-o', 'deps', '-o', 'tools', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, TERM: 'dumb' },
    maxBuffer: 8 * 1024 * 1024,
  });
  return stdout;
}

/** The commands a plan prints (`  + cmd`), and the index of the first matching one (asserted to exist). */
function planCommands(plan: string): { commands: string[]; indexOf: (re: RegExp) => number } {
  const commands = plan.split('\n').filter((l) => l.startsWith('  + ')).map((l) => l.slice(4));
  const indexOf = (re: RegExp) => {
    const i = commands.findIndex((c) => re.test(c));
    assert.ok(i >= 0, `the plan has a command matching ${re}\n${commands.join('\n')}`);
    return i;
  };
  return { commands, indexOf };
}

describe('make up DRY_RUN=1 (the plan)', async () => {
  const plan = await make('up', 'DRY_RUN=1');
  const { commands, indexOf } = planCommands(plan);

  it('prints the steps in order, numbered, with elapsed time, and runs nothing', () => {
    assert.match(plan, /DRY_RUN=1: printing the plan; nothing is run\./);
    const steps = [...plan.matchAll(/^\[\s*\d+s\] \((\d+)\/(\d+)\) (.+)$/gm)].map((m) => ({ n: Number(m[1]), of: Number(m[2]), title: m[3]! }));
    assert.deepEqual(steps.map((s) => s.n), steps.map((_, i) => i + 1));
    assert.ok(steps.every((s) => s.of === steps.length));
    const order = ['Preflight', 'kind cluster', 'metrics-server', 'Linkerd', 'Linkerd check', 'kube-prometheus-stack', 'Images', 'Load the images', 'Synthesize', 'Apply', 'Roll out', 'Plan printed'];
    assert.deepEqual(steps.map((s) => order.filter((o) => s.title.startsWith(o)).sort((a, b) => b.length - a.length)[0]), order);
  });

  it('preflight reports each tool with its version or an install hint', () => {
    for (const tool of ['docker', 'kind', 'kubectl', 'helm', 'node', 'openssl']) assert.match(plan, new RegExp(`[✓✗] ${tool}\\s`), tool);
    assert.match(plan, /✓ kubectl\s+Client Version: v1\.35/, 'the pinned kubectl from .tools/bin');
    // This machine has no kind: the hint names the pinned version.
    if (/✗ kind/.test(plan)) assert.match(plan, new RegExp(`go install sigs\\.k8s\\.io/kind@${tools.KIND_VERSION}`));
  });

  it('installs in order: cluster → metrics-server → Linkerd (certs, CRDs, control plane, check) → kube-prometheus-stack → images → load → synth → apply → rollout', () => {
    const seq = [
      /kind create cluster --name 'sagamesh' --config kind-config\.yaml/,
      /helm .* upgrade --install metrics-server metrics-server /,
      /linkerd-certs\.sh /,
      /gateway-api\/releases\/download\/v[\d.]+\/standard-install\.yaml/,
      /upgrade --install linkerd-crds linkerd-crds /,
      /upgrade --install linkerd-control-plane linkerd-control-plane /,
      /rollout status deploy\/linkerd-proxy-injector/,
      /mutatingwebhookconfiguration linkerd-proxy-injector-webhook-config/,
      /upgrade --install kube-prometheus-stack kube-prometheus-stack /,
      /docker build --build-arg SERVICE=gateway /,
      /kind load docker-image --name sagamesh /,
      /cdk8s\/src\/main\.ts --image-tag dev --faults$/,
      /apply --server-side .* -f cdk8s\/dist\/00-crds\.yaml/,
      /wait --for=condition=Established .* cdk8s\/dist\/00-crds\.yaml/,
      /apply --server-side .* -f cdk8s\/dist\/01-namespace\.yaml/,
      /create secret generic sagamesh-gateway --from-file=api-keys=.* --from-file=admin-api-keys=/,
      /-n nats create secret generic nats-users --from-file=.*nats' --dry-run=client/,
      /-n sagamesh create secret generic nats-users --from-file=.*nats' --dry-run=client/,
      /delete job nats-provision --ignore-not-found/,
      /apply --server-side .* -f cdk8s\/dist\/<file> .*skipped when the cluster does not serve its kinds/,
      /restart-changed\.sh /,
      /rollout status statefulset\/nats/,
      /wait --for=condition=complete job\/nats-provision/,
      /rollout status deploy\/operator/,
    ];
    const positions = seq.map(indexOf);
    assert.deepEqual(positions, [...positions].sort((a, b) => a - b), 'steps in this order');
  });

  it('pins every chart version from charts/versions.env, with its values file, waiting for readiness', () => {
    for (const { chart, version } of pinnedCharts()) {
      const cmd = commands[indexOf(new RegExp(`upgrade --install \\S+ ${chart} `))]!;
      assert.match(cmd, new RegExp(`--version ${version.replaceAll('.', '\\.')}( |$)`), chart);
      assert.match(cmd, new RegExp(`-f charts/values/${chart}\\.yaml`), chart);
      assert.match(cmd, /--wait --timeout/);
    }
    assert.match(commands[indexOf(/standard-install\.yaml/)]!, new RegExp(chartVersions.GATEWAY_API_VERSION!.replaceAll('.', '\\.')));
  });

  it('builds and loads one image per workload (contracts services + operator) with the tag', () => {
    const workloads = [...ServiceNames, 'operator'];
    for (const w of workloads) indexOf(new RegExp(`docker build --build-arg SERVICE=${w} -t sagamesh/${w}:dev -f Dockerfile \\.$`));
    const load = commands[indexOf(/kind load docker-image/)]!;
    for (const w of workloads) assert.ok(load.includes(`sagamesh/${w}:dev`), w);
    for (const w of workloads) indexOf(new RegExp(`rollout status deploy/${w} `));
  });

  it('is idempotent by construction: reuse the cluster, upgrade --install, server-side apply, never create or delete blindly', () => {
    assert.match(commands[indexOf(/kind create cluster/)]!, /^kind get clusters \| grep -qx 'sagamesh' \|\| kind create cluster/);
    assert.ok(commands.filter((c) => /\bhelm\b/.test(c)).every((c) => /upgrade --install/.test(c)));
    assert.ok(commands.filter((c) => /kubectl .* apply /.test(c)).every((c) => /--server-side/.test(c)));
    // The one delete: the provisioning Job, by name and only if it exists, so that the apply runs it again.
    const deletes = commands.filter((c) => /\bdelete\b/.test(c));
    assert.deepEqual(deletes.map((c) => c.replace(/^kubectl --context \S+ /, '')), ['-n sagamesh delete job nats-provision --ignore-not-found --wait=true']);
    assert.ok(!commands.some((c) => /\bkubectl create (?!secret generic .* --dry-run=client)\b/.test(c)), 'nothing created non-idempotently');
    for (const identity of NatsIdentities) assert.match(commands[indexOf(new RegExp(`nats/${identity}'`))]!, new RegExp(`test -s .*nats/${identity}' \\|\\| `), `${identity}'s NATS password is generated once`);
    assert.match(commands[indexOf(/api-key/)]!, /test -s .*api-key' \|\| /, 'the API key is generated once');
    assert.match(commands[indexOf(/admin-key/)]!, /test -s .*admin-key' \|\| /, 'the admin key is generated once');
  });

  it('ends with the URLs and the next three commands', () => {
    assert.match(plan, /Gateway\s+http:\/\/localhost:8080/);
    assert.match(plan, /Grafana\s+http:\/\/localhost:3000/);
    const next = plan.slice(plan.indexOf('Next:'));
    assert.deepEqual([...next.matchAll(/^\s+(\d)\. /gm)].map((m) => m[1]), ['1', '2', '3']);
    assert.match(next, /POST|\/api\/orders/);
    assert.match(next, /get sagas -w/);
    assert.match(next, /make load/);
  });

  it('`make down DRY_RUN=1` deletes only the kind cluster, then stops a dockerd only if make up started it', async () => {
    const down = (await make('down', 'DRY_RUN=1')).split('\n').filter((l) => l.startsWith('  + '));
    assert.equal(down[0], '  + kind delete cluster --name sagamesh');
    assert.match(down[1]!, /scripts\/cluster\/docker\.sh stop$/);
    assert.equal(down.length, 2);
  });
});

describe('make up OFFLINE=1 DRY_RUN=1 (the offline plan)', async () => {
  const plan = await make('up', 'DRY_RUN=1', 'OFFLINE=1');
  const { commands, indexOf } = planCommands(plan);

  it('says what it leaves out, and never touches a chart, a registry URL or Linkerd', () => {
    assert.match(plan, /OFFLINE=1: every image is built here .*Linkerd and Grafana are left out/);
    assert.ok(!commands.some((c) => /\bhelm\b|https?:\/\/|linkerd|docker pull/.test(c)), commands.join('\n'));
  });

  it('cuts the cluster network off before the cluster exists, builds every image before kind needs it, trims, and loads the add-ons', () => {
    const seq = [
      /docker\.sh start$/,
      /docker\.sh isolate$/,
      /offline-images\.sh$/,
      /addon-images\.sh$/,
      /kind create cluster --name 'sagamesh' --config .*kind-config\.offline\.yaml/,
      /docker build --build-arg SERVICE=gateway --build-arg NODE_IMAGE=sagamesh-build\/node:/,
      /docker build --build-arg SERVICE=operator /,
      // After the last build: the images the rebuilds untagged, and the build cache past its bound, go.
      /docker\.sh trim$/,
      /kind load docker-image --name sagamesh /,
      /cdk8s\/src\/main\.ts --image-tag dev --faults --offline$/,
      /apply --server-side .* -f cdk8s\/dist\/00-crds\.yaml/,
      /rollout status statefulset\/nats/,
      /wait --for=condition=complete job\/nats-provision/,
      /rollout status deploy\/operator/,
      /-n kube-system rollout status deploy\/metrics-server/,
      /-n monitoring rollout status deploy\/prometheus/,
    ];
    const positions = seq.map(indexOf);
    assert.deepEqual(positions, [...positions].sort((a, b) => a - b), 'steps in this order');
    const loads = commands.filter((c) => c.startsWith('kind load docker-image'));
    assert.match(loads[0]!, /--nodes sagamesh-worker\\?,sagamesh-worker2 .*sagamesh\/gateway:dev.*sagamesh-build\/metrics-server:/, 'what never runs on the control plane goes to the workers');
    assert.ok(!loads[0]!.includes('nats-server'));
    assert.match(loads[1]!, /^kind load docker-image --name sagamesh sagamesh-build\/nats-server:\S+$/, 'NATS goes to every node');
  });

  it('hands the build this machine\'s CA bundle as a secret, never as a build arg', () => {
    const build = commands[indexOf(/docker build --build-arg SERVICE=gateway /)]!;
    assert.match(build, /--secret id=npm_ca\\?,src=\S+/, 'shown quoted: the comma may be escaped');
    assert.ok(!/--build-arg [A-Z_]*CA/.test(build));
  });
});

describe('kind-config.yaml', () => {
  const kind = parse(readFileSync(path.join(REPO_ROOT, 'kind-config.yaml'), 'utf8'));

  it('one control plane and two workers, all on the pinned node image (tools/versions.env KIND_NODE_IMAGE)', () => {
    assert.equal(kind.kind, 'Cluster');
    assert.equal(kind.apiVersion, 'kind.x-k8s.io/v1alpha4');
    assert.deepEqual(kind.nodes.map((n: any) => n.role), ['control-plane', 'worker', 'worker']);
    for (const n of kind.nodes) assert.equal(n.image, tools.KIND_NODE_IMAGE);
    assert.match(tools.KIND_NODE_IMAGE!, /^kindest\/node:v1\.35\.\d+@sha256:[0-9a-f]{64}$/);
    assert.equal(tools.KIND_NODE_IMAGE!.split(':')[1]!.split('.').slice(0, 2).join('.'), tools.KUBERNETES_VERSION!.split('.').slice(0, 2).join('.'), 'same Kubernetes minor as kube-apiserver/kubectl');
  });

  it('maps the gateway and Grafana NodePorts to localhost:8080 and :3000', () => {
    const maps = kind.nodes[0].extraPortMappings.map((m: any) => [m.containerPort, m.hostPort, m.listenAddress]);
    const grafanaNodePort = parse(readFileSync(path.join(REPO_ROOT, 'charts/values/kube-prometheus-stack.yaml'), 'utf8')).grafana.service.nodePort;
    assert.deepEqual(maps, [[PLATFORM_DEFAULTS.gatewayNodePort, 8080, '127.0.0.1'], [grafanaNodePort, 3000, '127.0.0.1']]);
  });
});

describe('Linkerd certificates (scripts/cluster/linkerd-certs.sh, real openssl)', () => {
  it('makes an ECDSA P-256 trust anchor and an intermediate issuer Linkerd accepts, and keeps them on a rerun', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-linkerd-'));
    try {
      const out = path.join(dir, 'certs');
      await run('bash', [path.join(REPO_ROOT, 'scripts/cluster/linkerd-certs.sh'), out]);
      const text = async (f: string) => (await run('openssl', ['x509', '-in', path.join(out, f), '-noout', '-text'])).stdout;
      const ca = await text('ca.crt');
      const issuer = await text('issuer.crt');
      assert.match(ca, /Subject: CN\s?=\s?root\.linkerd\.cluster\.local/);
      assert.match(ca, /CA:TRUE/);
      assert.match(issuer, /Subject: CN\s?=\s?identity\.linkerd\.cluster\.local/);
      assert.match(issuer, /Issuer: CN\s?=\s?root\.linkerd\.cluster\.local/);
      assert.match(issuer, /CA:TRUE, pathlen:0/);
      assert.match(issuer, /Certificate Sign, CRL Sign/);
      for (const t of [ca, issuer]) assert.match(t, /NIST CURVE: P-256/);
      assert.match(readFileSync(path.join(out, 'issuer.key'), 'utf8'), /^-----BEGIN EC PRIVATE KEY-----/);
      assert.equal(statSync(path.join(out, 'issuer.key')).mode & 0o077, 0, 'keys readable by the owner only');
      const { stdout: verified } = await run('openssl', ['verify', '-CAfile', path.join(out, 'ca.crt'), path.join(out, 'issuer.crt')]);
      assert.match(verified, /OK/);
      const before = readFileSync(path.join(out, 'issuer.crt'), 'utf8');
      const { stdout: again } = await run('bash', [path.join(REPO_ROOT, 'scripts/cluster/linkerd-certs.sh'), out]);
      assert.match(again, /reusing/);
      assert.equal(readFileSync(path.join(out, 'issuer.crt'), 'utf8'), before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
