/**
 * The NATS construct: props → objects, every default and every refusal. What the rendered config does on a
 * real nats-server (syntax, a 3-server JetStream cluster, R3 streams, accounts) is in nats.nats.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import fc from 'fast-check';
import { DEFAULT_CLUSTER } from '../src/cluster.ts';
import {
  NATS_BINARY,
  NATS_DEFAULTS,
  NatsCluster,
  NatsClusterPropsError,
  type NatsClusterProps,
  NatsEnvRef,
  natsServerConf,
  passwordEnvName,
  renderNatsConf,
  validateNatsProps,
} from '../src/nats.ts';
import { find, type K8sObject, modelFor, selects } from './helpers.ts';

function build(props: NatsClusterProps = {}): { objs: K8sObject[]; nats: NatsCluster } {
  const chart = new Chart(Testing.app(), 'test');
  const nats = new NatsCluster(chart, 'nats', props);
  return { objs: Testing.synth(chart) as K8sObject[], nats };
}

const defaults = build();
const sts = find(defaults.objs, 'StatefulSet', 'nats');
const pod = sts.spec.template;
const container = pod.spec.containers[0];

describe('NatsCluster: the defaults', () => {
  it('synthesizes exactly the objects of a JetStream cluster, each valid against the Kubernetes schema', () => {
    assert.deepEqual(defaults.objs.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ConfigMap/nats',
      'NetworkPolicy/nats',
      'PodDisruptionBudget/nats',
      'Service/nats',
      'Service/nats-headless',
      'ServiceAccount/nats',
      'StatefulSet/nats',
    ]);
    for (const o of defaults.objs) {
      assert.equal(o.metadata.namespace, DEFAULT_CLUSTER.natsNamespace);
      assert.doesNotThrow(() => new (modelFor(o.apiVersion, o.kind)!)(o).validate(), `${o.kind}/${o.metadata.name}`);
    }
  });

  it('three servers started together, routes over the headless Service, the store on a claim per server', () => {
    assert.equal(sts.spec.replicas, 3);
    assert.equal(sts.spec.podManagementPolicy, 'Parallel');
    assert.equal(sts.spec.serviceName, 'nats-headless');
    assert.deepEqual(sts.spec.volumeClaimTemplates.map((t: any) => [t.metadata.name, t.spec.accessModes, t.spec.resources.requests.storage, t.spec.storageClassName]), [
      ['data', ['ReadWriteOnce'], '2048Mi', undefined],
    ]);
    assert.deepEqual(container.volumeMounts.find((m: any) => m.name === 'data'), { name: 'data', mountPath: '/data' });
    const headless = find(defaults.objs, 'Service', 'nats-headless');
    assert.equal(headless.spec.clusterIP, 'None');
    assert.equal(headless.spec.publishNotReadyAddresses, true, 'routes resolve before readiness (which needs the routes)');
    assert.deepEqual(headless.spec.ports.map((p: any) => [p.name, p.port]), [['client', 4222], ['cluster', 6222], ['monitor', 8222]]);
    for (let i = 0; i < 3; i++) assert.ok(defaults.nats.config.includes(`"nats://nats-${i}.nats-headless.nats.svc.cluster.local:6222"`), `route to nats-${i}`);
  });

  it('clients use the client Service on 4222: the URL every workload gets, and R3 for their streams', () => {
    const svc = find(defaults.objs, 'Service', 'nats');
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.deepEqual(svc.spec.ports, [{ name: 'client', port: 4222, targetPort: 'client' }]);
    assert.ok(selects({ matchLabels: svc.spec.selector }, pod.metadata.labels));
    assert.equal(defaults.nats.url, 'nats://nats.nats.svc.cluster.local:4222');
    assert.equal(defaults.nats.streamReplicas, 3);
  });

  it('Prometheus finds it by the `app.kubernetes.io/name=nats` label and the named port `monitor` (8222)', () => {
    assert.equal(pod.metadata.labels['app.kubernetes.io/name'], 'nats');
    assert.deepEqual(container.ports.map((p: any) => [p.name, p.containerPort]), [['client', 4222], ['cluster', 6222], ['monitor', 8222]]);
    assert.ok(defaults.nats.config.includes('http_port: 8222'));
  });

  it('a PodDisruptionBudget of one server at a time, and servers preferably on different nodes', () => {
    const pdb = find(defaults.objs, 'PodDisruptionBudget', 'nats');
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.ok(selects(pdb.spec.selector, pod.metadata.labels));
    assert.deepEqual(pod.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, undefined, 'required would leave a server Pending with fewer nodes than servers');
    const [term] = pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
    assert.equal(term.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.ok(selects(term.podAffinityTerm.labelSelector, pod.metadata.labels));
    assert.equal(pod.spec.tolerations, undefined);
  });

  it('probes: full health before the first readiness, then JetStream enabled, on the monitor port', () => {
    assert.equal(container.startupProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/healthz?js-enabled-only=true');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz?js-enabled-only=true');
    for (const p of [container.startupProbe, container.readinessProbe, container.livenessProbe]) assert.equal(p.httpGet.port, 'monitor');
  });

  it('runs the binary both images have, with the config from the ConfigMap; lame duck mode before stopping', () => {
    assert.equal(container.image, NATS_DEFAULTS.image);
    assert.equal(container.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(container.command, [NATS_BINARY]);
    assert.deepEqual(container.args, ['-c', '/etc/nats/nats.conf']);
    assert.deepEqual(find(defaults.objs, 'ConfigMap', 'nats').data, { 'nats.conf': defaults.nats.config });
    assert.deepEqual(container.lifecycle.preStop.exec.command, [NATS_BINARY, '-sl=ldm=/var/run/nats/nats.pid']);
    assert.ok(defaults.nats.config.includes('pid_file: "/var/run/nats/nats.pid"'));
    assert.ok(defaults.nats.config.includes('lame_duck_duration: "30s"'));
    // Lame duck (30 s) + its grace (10 s) + the shutdown itself, before the kubelet's SIGKILL.
    assert.equal(pod.spec.terminationGracePeriodSeconds, 60);
  });

  it('hardened like every workload: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no token', () => {
    assert.deepEqual(pod.spec.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: { type: 'RuntimeDefault' } });
    assert.deepEqual(container.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } });
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.equal(find(defaults.objs, 'ServiceAccount', 'nats').automountServiceAccountToken, false);
    // The writable places: the store (claim), the pid file (emptyDir); the config is read-only.
    assert.deepEqual(container.volumeMounts.map((m: any) => [m.mountPath, m.readOnly ?? false]), [['/etc/nats', true], ['/data', false], ['/var/run/nats', false]]);
    assert.equal(pod.metadata.annotations['linkerd.io/inject'], 'disabled');
  });

  it('resources, and GOMEMLIMIT under the memory limit', () => {
    assert.deepEqual(container.resources, { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1000m', memory: '512Mi' } });
    assert.deepEqual(container.env.find((e: any) => e.name === 'GOMEMLIMIT'), { name: 'GOMEMLIMIT', value: '460MiB' });
    assert.deepEqual(container.env.find((e: any) => e.name === 'POD_NAME'), { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    assert.ok(defaults.nats.config.startsWith('server_name: $POD_NAME\n'), 'each server is named after its pod (stable JetStream peer)');
  });

  it('NetworkPolicy: clients on 4222 from the app namespace, routes between servers, Prometheus on 8222; out only DNS and routes', () => {
    const np = find(defaults.objs, 'NetworkPolicy', 'nats');
    assert.ok(selects(np.spec.podSelector, pod.metadata.labels));
    assert.deepEqual(
      np.spec.ingress.map((r: any) => [r.ports.map((p: any) => p.port), r.from]),
      [
        [[4222], [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sagamesh' } } }]],
        [[6222], [{ podSelector: np.spec.podSelector }]],
        [[8222], [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]],
      ],
    );
    assert.deepEqual(np.spec.egress.map((r: any) => r.ports.map((p: any) => p.port)), [[53, 53], [6222]]);
  });

  it('a config change rolls the servers (its hash is on the pod template)', () => {
    const other = build({ lameDuck: { durationSeconds: 40, gracePeriodSeconds: 5 } });
    const hash = (o: { objs: K8sObject[] }) => find(o.objs, 'StatefulSet', 'nats').spec.template.metadata.annotations['sagamesh.io/config-sha256'];
    assert.match(hash(defaults), /^[0-9a-f]{64}$/);
    assert.notEqual(hash(other), hash(defaults));
    assert.equal(hash(build()), hash(defaults), 'deterministic');
  });
});

describe('NatsCluster: props', () => {
  it('one server: no cluster block, no routes, R1 streams', () => {
    const { objs, nats } = build({ replicas: 1 });
    assert.equal(find(objs, 'StatefulSet', 'nats').spec.replicas, 1);
    assert.ok(!nats.config.includes('cluster:'));
    assert.ok(!nats.config.includes('6222'));
    assert.equal(nats.streamReplicas, 1);
  });

  it('five servers: five routes, R3 streams (JetStream\'s usual replication)', () => {
    const { nats } = build({ replicas: 5 });
    assert.equal((nats.config.match(/nats:\/\/nats-\d\.nats-headless/g) ?? []).length, 5);
    assert.equal(nats.streamReplicas, 3);
  });

  it('offline image, pulled never; tolerations; storage class and sizes; ports; cluster name', () => {
    const { objs, nats } = build({
      image: 'sagamesh-build/nats-server:v2.15.2',
      imagePullPolicy: 'Never',
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
      storage: { sizeMiB: 4096, maxFileStoreMiB: 3000, storageClassName: 'standard' },
      clusterPort: 7222,
      monitorPort: 9222,
      clusterName: 'other',
    });
    const s = find(objs, 'StatefulSet', 'nats');
    const c = s.spec.template.spec.containers[0];
    assert.deepEqual([c.image, c.imagePullPolicy], ['sagamesh-build/nats-server:v2.15.2', 'Never']);
    assert.deepEqual(s.spec.template.spec.tolerations, [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }]);
    assert.equal(s.spec.volumeClaimTemplates[0].spec.storageClassName, 'standard');
    assert.equal(s.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '4096Mi');
    assert.ok(nats.config.includes('max_file_store: "3000M"'));
    assert.ok(nats.config.includes('name: "other"') && nats.config.includes('port: 7222') && nats.config.includes('http_port: 9222'));
    assert.deepEqual(c.ports.map((p: any) => p.containerPort), [4222, 7222, 9222]);
  });

  it('the namespace, Service and client port come from the cluster refs the workloads use', () => {
    const cluster = { ...DEFAULT_CLUSTER, natsNamespace: 'bus', natsService: 'jet', natsPort: 5222 };
    const { objs, nats } = build({ cluster });
    assert.equal(nats.url, 'nats://jet.bus.svc.cluster.local:5222');
    assert.equal(find(objs, 'StatefulSet', 'jet').metadata.namespace, 'bus');
    assert.ok(nats.config.includes('"nats://jet-0.jet-headless.bus.svc.cluster.local:6222"'));
    assert.ok(nats.config.includes('port: 5222'));
  });

  it('clients: named workloads of a namespace', () => {
    const { objs } = build({ clients: [{ namespace: 'sagamesh', names: ['orders', 'gateway'] }, { namespace: 'tools' }] });
    const from = find(objs, 'NetworkPolicy', 'nats').spec.ingress[0].from;
    assert.deepEqual(from, [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sagamesh' } }, podSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['gateway', 'orders'] }] } },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tools' } } },
    ]);
  });

  it('the accounts slot: accounts and users in the config, passwords from Secrets through the environment only', () => {
    const { objs, nats } = build({
      accounts: [
        {
          name: 'SAGAMESH',
          jetstream: true,
          users: [
            { user: 'orders', password: { secret: 'nats-users', key: 'orders' }, permissions: { publish: { allow: ['cmd.>', '$JS.API.>'], deny: ['cmd.payments.refund'] }, subscribe: { allow: ['_INBOX.>'] }, allowResponses: true } },
            { user: 'gateway', password: { secret: 'nats-users', key: 'gateway' } },
          ],
        },
        { name: 'SYS', jetstream: false, users: [{ user: 'sys', password: { secret: 'nats-sys', key: 'password' } }] },
      ],
      systemAccount: 'SYS',
    });
    assert.match(nats.config, /accounts: \{\n {2}SAGAMESH: \{\n {4}jetstream: true\n {4}users: \[/);
    assert.ok(nats.config.includes('password: $NATS_PASSWORD_ORDERS'));
    assert.ok(nats.config.includes('deny: [\n'));
    assert.ok(nats.config.includes('allow_responses: true'));
    assert.ok(nats.config.includes('system_account: "SYS"'));
    assert.ok(!find(objs, 'ConfigMap', 'nats').data['nats.conf'].includes('nats-users'), 'the ConfigMap names no Secret: only $VARIABLES');
    const env = find(objs, 'StatefulSet', 'nats').spec.template.spec.containers[0].env;
    assert.deepEqual(env.filter((e: any) => e.name.startsWith('NATS_PASSWORD_')), [
      { name: 'NATS_PASSWORD_ORDERS', valueFrom: { secretKeyRef: { name: 'nats-users', key: 'orders' } } },
      { name: 'NATS_PASSWORD_GATEWAY', valueFrom: { secretKeyRef: { name: 'nats-users', key: 'gateway' } } },
      { name: 'NATS_PASSWORD_SYS', valueFrom: { secretKeyRef: { name: 'nats-sys', key: 'password' } } },
    ]);
    assert.ok(!defaults.nats.config.includes('accounts'), 'no accounts by default: the global account, no authentication');
  });

  const good: NatsClusterProps = {};
  const cases: [string, NatsClusterProps, RegExp][] = [
    ['two servers', { replicas: 2 }, /replicas 2: JetStream needs a majority of its servers up, so use 1 \(a single server\), 3/],
    ['an unpinned image', { image: 'nats:latest' }, /must be a pinned reference/],
    ['an image without a tag', { image: 'nats' }, /must be a pinned reference/],
    ['a cluster name with a space', { clusterName: 'a b' }, /clusterName "a b" must be 1–64 letters/],
    ['a privileged port', { monitorPort: 80 }, /monitorPort 80 must be an integer 1024–65535/],
    ['two equal ports', { clusterPort: 4222 }, /ports \(4222, 4222, 8222\) must differ/],
    ['a file store as big as its volume', { storage: { sizeMiB: 1024, maxFileStoreMiB: 1024 } }, /maxFileStoreMiB 1024 must be an integer from 64 to 90 % of storage.sizeMiB \(921\)/],
    ['a tiny volume', { storage: { sizeMiB: 100, maxFileStoreMiB: 64 } }, /storage.sizeMiB 100 must be an integer 256/],
    ['a memory store the limit cannot hold', { maxMemoryStoreMiB: 450 }, /memoryLimitMiB 512 must be at least maxMemoryStoreMiB \+ 128 \(578\)/],
    ['a request above the limit', { resources: { cpuRequestMillis: 2000, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 512 } }, /cpuRequestMillis \(2000\) <= cpuLimitMillis/],
    ['a lame duck grace beyond its duration', { lameDuck: { durationSeconds: 30, gracePeriodSeconds: 30 } }, /gracePeriodSeconds 30 must be an integer >= 0 and below durationSeconds/],
    ['a lame duck shorter than nats-server allows', { lameDuck: { durationSeconds: 10, gracePeriodSeconds: 5 } }, /durationSeconds 10 must be an integer 30–300 \(nats-server refuses less than 30 s\)/],
    ['root', { runAsUser: 0 }, /runAsUser 0 must be a non-root UID/],
    ['a system account that is not defined', { systemAccount: 'SYS' }, /systemAccount "SYS" is not one of accounts \(none\)/],
    ['an account twice', { accounts: [{ name: 'A', jetstream: true, users: [{ user: 'a', password: { secret: 's', key: 'k' } }] }, { name: 'A', jetstream: true, users: [{ user: 'b', password: { secret: 's', key: 'k' } }] }] }, /"A" is defined twice/],
    ['an account without users', { accounts: [{ name: 'A', jetstream: true, users: [] }] }, /"A" has no users/],
    ['a user in two accounts', { accounts: [{ name: 'A', jetstream: true, users: [{ user: 'a', password: { secret: 's', key: 'k' } }] }, { name: 'B', jetstream: true, users: [{ user: 'a', password: { secret: 's', key: 'k' } }] }] }, /"a" and "a" are the same user/],
    ['two users sharing a password variable', { accounts: [{ name: 'A', jetstream: true, users: [{ user: 'a-b', password: { secret: 's', key: 'k' } }, { user: 'a_b', password: { secret: 's', key: 'k' } }] }] }, /both read their password from NATS_PASSWORD_A_B; rename one/],
    ['a password without a Secret', { accounts: [{ name: 'A', jetstream: true, users: [{ user: 'a', password: { secret: '', key: 'k' } }] }] }, /needs a password \{ secret: <Secret name>, key: <key> \}/],
    ['a bad subject', { accounts: [{ name: 'A', jetstream: true, users: [{ user: 'a', password: { secret: 's', key: 'k' }, permissions: { publish: { allow: ['cmd.>.x'] } } }] }] }, /publish subject "cmd.>.x" is not a NATS subject/],
    ['a bad client namespace', { clients: [{ namespace: 'Apps' }] }, /clients: namespace "Apps" must be a DNS-1123 label/],
    ['an empty client list', { clients: [{ namespace: 'apps', names: [] }] }, /leave it out to allow every pod/],
  ];
  for (const [what, patch, message] of cases) {
    it(`refuses ${what} in the constructor, saying how to fix it`, () => {
      assert.throws(() => build({ ...good, ...patch }), (err: unknown) => err instanceof NatsClusterPropsError && message.test(err.message));
    });
  }

  it('reports every problem at once', () => {
    assert.equal(validateNatsProps({ replicas: 4, image: 'x:latest', runAsUser: -1 }).length, 3);
  });

  it('any of the server counts and store sizes it accepts builds, with that many routes and a store within the volume', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 3, 5), fc.integer({ min: 256, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (replicas, sizeMiB, f) => {
        const maxFileStoreMiB = 64 + Math.floor(f * (Math.floor(sizeMiB * 0.9) - 64));
        const props: NatsClusterProps = { replicas, storage: { sizeMiB, maxFileStoreMiB } };
        assert.deepEqual(validateNatsProps(props), []);
        const { nats } = build(props);
        assert.equal((nats.config.match(/nats-\d\.nats-headless/g) ?? []).length, replicas > 1 ? replicas : 0);
        assert.ok(nats.config.includes(`max_file_store: "${maxFileStoreMiB}M"`));
      }),
      { numRuns: 25 },
    );
  });
});

describe('the NATS config format', () => {
  it('renders maps, lists, strings, numbers, booleans and unquoted $VARIABLE references', () => {
    assert.equal(
      renderNatsConf({ a: 'x"y', b: 1, c: true, d: new NatsEnvRef('V'), e: ['p', 'q'], f: {}, g: [], 'h.i': { j: 'k' } }),
      'a: "x\\"y"\nb: 1\nc: true\nd: $V\ne: [\n  "p"\n  "q"\n]\nf: {}\ng: []\n"h.i": {\n  j: "k"\n}\n',
    );
    assert.equal(passwordEnvName('orders-svc.v2'), 'NATS_PASSWORD_ORDERS_SVC_V2');
  });

  it('a single server\'s config has no cluster block; a literal name is quoted', () => {
    const conf = natsServerConf({
      serverName: 'dev',
      clientPort: 4222,
      monitorPort: 8222,
      storeDir: '/tmp/x',
      pidFile: '/tmp/x/pid',
      maxFileStoreMiB: 100,
      maxMemoryStoreMiB: 10,
      lameDuck: { durationSeconds: 30, gracePeriodSeconds: 1 },
      accounts: [],
    });
    assert.ok(conf.startsWith('server_name: "dev"\n'));
    assert.ok(!conf.includes('cluster'));
  });
});
