import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { NatsIdentities, natsPermissions, Ports, sagameshCrds, ServiceNames } from '@sagamesh/contracts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { addonImages, parseVersionsEnv, synthOfflineAddons } from '../src/addons/index.ts';
import { LinkerdPorts } from '../src/cluster.ts';
import { crdRequirements, parseSynthArgs, platformConfig, readRuleFiles } from '../src/main.ts';
import { NATS_DEFAULTS, NATS_VERSION, passwordEnvName } from '../src/nats.ts';
import { PROVISION_JOB } from '../src/provision.ts';
import { CRD_BACKED_FILES, KIND_CONTROL_PLANE_TOLERATION, natsAccount, PLATFORM_DEFAULTS, splitByApi, synthPlatform, WORKLOADS } from '../src/platform.ts';
import { parse } from 'yaml';
import { byKind, find, type K8sObject, modelFor, NO_SCHEMA_GROUPS, RULES_DIR, selects, synthAll, testConfig } from './helpers.ts';

const objects = synthAll();
const deployments = byKind(objects, 'Deployment');
const workloads = [...ServiceNames, 'operator'] as const;

describe('synthesized platform: schemas', () => {
  it('validates every object against the Kubernetes (or prometheus-operator) schema of its apiVersion/kind', () => {
    const unchecked: string[] = [];
    for (const o of objects) {
      const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '';
      const Model = modelFor(o.apiVersion, o.kind);
      if (!Model) {
        assert.ok(NO_SCHEMA_GROUPS.has(group), `no schema model for ${o.apiVersion} ${o.kind} (${o.metadata.name}): add a validator or list its group`);
        unchecked.push(`${o.kind}/${o.metadata.name}`);
        continue;
      }
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name} fails its schema`);
    }
    // Only the Linkerd policy CRs lack a schema here; they are still server-unchecked (see the k8s test).
    assert.ok(unchecked.length > 0 && unchecked.every((u) => /^(Server|AuthorizationPolicy|MeshTLSAuthentication|NetworkAuthentication|HTTPRoute)\//.test(u)), unchecked.join(', '));
  });

  it('the validator does reject a broken object (so the check above can fail)', () => {
    const d = structuredClone(deployments[0]!);
    d.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    const Model = modelFor(d.apiVersion, d.kind)!;
    assert.throws(() => new Model(d).validate(), /containerPort must be integer/);
  });

  it('the PodMonitors and the PrometheusRule are checked against the prometheus-operator schema, which rejects a broken rule', () => {
    for (const kind of ['PodMonitor', 'PrometheusRule']) assert.ok(modelFor('monitoring.coreos.com/v1', kind), kind);
    const rule = structuredClone(find(objects, 'PrometheusRule', 'sagamesh'));
    delete rule.spec.groups[0].name;
    const Model = modelFor(rule.apiVersion, rule.kind)!;
    assert.throws(() => new Model(rule).validate(), /spec\/groups\/0 must have required property name/);
  });

  it('writes CRDs, then the namespaces, then the rest; every namespaced object is in the sagamesh namespace, NATS in its own', () => {
    const files = synthPlatform(testConfig());
    assert.deepEqual(files.map((f) => f.file), ['00-crds.yaml', '01-namespace.yaml', '02-platform.yaml', '03-linkerd.yaml', '04-prometheus-operator.yaml']);
    assert.ok(files[0]!.objects.length >= 2 && files[0]!.objects.every((o) => o.kind === 'CustomResourceDefinition'));
    assert.deepEqual((files[1]!.objects as K8sObject[]).map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/sagamesh', 'Namespace/nats']);
    for (const o of files.slice(2).flatMap((f) => f.objects) as K8sObject[]) {
      if (['ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) assert.equal(o.metadata.namespace, undefined);
      else assert.equal(o.metadata.namespace, o.metadata.labels?.['app.kubernetes.io/name'] === 'nats' ? 'nats' : 'sagamesh', `${o.kind}/${o.metadata.name}`);
    }
    const names = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    assert.equal(new Set(names).size, names.length, 'object names are unique per kind and namespace');
  });
});

describe('synthesized platform: hardening on every workload', () => {
  it('has exactly one Deployment per contracts service plus the operator', () => {
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), [...workloads].sort());
  });

  for (const d of deployments) {
    const name = d.metadata.name;
    const port = name === 'operator' ? Ports.operator : Ports[name as keyof typeof Ports];
    const pod = d.spec.template;
    const app = pod.spec.containers.find((c: any) => c.name === 'app');

    it(`${name}: probes on the runtime's /livez and /readyz at its contracts port`, () => {
      assert.equal(app.ports[0].containerPort, port);
      assert.equal(app.startupProbe.httpGet.path, '/livez');
      assert.equal(app.livenessProbe.httpGet.path, '/livez');
      assert.equal(app.readinessProbe.httpGet.path, '/readyz');
      for (const p of [app.startupProbe, app.livenessProbe, app.readinessProbe]) assert.equal(p.httpGet.port, port);
      assert.equal(app.env.find((e: any) => e.name === 'PORT')?.value, String(port));
    });

    it(`${name}: CPU and memory requests and limits`, () => {
      for (const k of ['cpu', 'memory']) {
        assert.ok(app.resources.requests[k], `${k} request`);
        assert.ok(app.resources.limits[k], `${k} limit`);
      }
    });

    it(`${name}: restricted securityContext, read-only root with a /tmp emptyDir`, () => {
      const psc = pod.spec.securityContext;
      assert.equal(psc.runAsNonRoot, true);
      assert.ok(psc.runAsUser > 0);
      assert.deepEqual(psc.seccompProfile, { type: 'RuntimeDefault' });
      const sc = app.securityContext;
      assert.equal(sc.runAsNonRoot, true);
      assert.equal(sc.readOnlyRootFilesystem, true);
      assert.equal(sc.allowPrivilegeEscalation, false);
      assert.equal(sc.privileged, false);
      assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
      const tmpMount = app.volumeMounts.find((m: any) => m.mountPath === '/tmp');
      assert.ok(tmpMount);
      assert.ok(pod.spec.volumes.find((v: any) => v.name === tmpMount.name)?.emptyDir);
    });

    it(`${name}: meshed, NATS bypasses the proxy, images never pulled`, () => {
      assert.equal(pod.metadata.annotations['linkerd.io/inject'], 'enabled');
      assert.equal(pod.metadata.annotations['config.linkerd.io/skip-outbound-ports'], '4222');
      assert.ok(pod.metadata.annotations['config.linkerd.io/proxy-cpu-request']);
      assert.equal(app.image, `sagamesh/${name}:dev`);
      assert.equal(app.imagePullPolicy, 'IfNotPresent');
    });

    it(`${name}: service account token only where the kube-apiserver is used`, () => {
      const sa = find(objects, 'ServiceAccount', name);
      const expected = name === 'operator';
      assert.equal(sa.automountServiceAccountToken, expected);
      assert.equal(pod.spec.automountServiceAccountToken, expected);
      assert.equal(pod.spec.serviceAccountName, name);
    });

    it(`${name}: Service, PodDisruptionBudget, NetworkPolicy and PodMonitor select its pods`, () => {
      const labels = pod.metadata.labels;
      assert.ok(selects(d.spec.selector, labels));
      const svc = find(objects, 'Service', name);
      assert.ok(Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v));
      assert.equal(svc.spec.ports[0].port, port);
      assert.ok(selects(find(objects, 'PodDisruptionBudget', name).spec.selector, labels));
      const np = find(objects, 'NetworkPolicy', name);
      assert.ok(selects(np.spec.podSelector, labels));
      assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
      const pm = find(objects, 'PodMonitor', name);
      assert.ok(selects(pm.spec.selector, labels));
      assert.deepEqual(pm.spec.podMetricsEndpoints.map((e: any) => [e.port, e.path, e.honorLabels]), [['http', '/metrics', true]]);
    });

    const fixed: Record<string, [number, string]> = { operator: [2, 'leader election'], inventory: [1, 'one writer of its stream'] };
    it(`${name}: ${fixed[name] ? `${fixed[name][0]} replica(s), no HPA (${fixed[name][1]})` : 'an autoscaling/v2 HPA on the app container CPU, at least 2 replicas, fast up, ~60 s down'}`, () => {
      const hpa = byKind(objects, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === name);
      if (fixed[name]) {
        assert.equal(hpa, undefined);
        assert.equal(d.spec.replicas, fixed[name][0]);
        return;
      }
      assert.ok(hpa, 'HPA');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.equal(d.spec.replicas, undefined, 'the HPA owns the replica count');
      // The front of the request path has a lower target, so `make load` on 2 cores scales it visibly.
      const target = ['gateway', 'orders'].includes(name) ? 30 : 70;
      assert.deepEqual(hpa.spec.metrics, [{ type: 'ContainerResource', containerResource: { name: 'cpu', container: 'app', target: { type: 'Utilization', averageUtilization: target } } }]);
      assert.ok(hpa.spec.minReplicas >= 2, 'a pod deleted or drained leaves one serving');
      assert.equal(hpa.spec.behavior.scaleUp.stabilizationWindowSeconds, 0);
      assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 60);
      // Capped on purpose (cdk8s/src/platform.ts says why): more engine replicas re-publish each other's outboxes.
      const cap: Record<string, number> = { orchestrator: 3 };
      if (cap[name] !== undefined) assert.equal(hpa.spec.maxReplicas, cap[name]);
      else assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas);
    });

    it(`${name}: a Linkerd Server on its port, authorized by an AuthorizationPolicy`, () => {
      const server = find(objects, 'Server', `${name}-http`);
      assert.ok(selects(server.spec.podSelector, pod.metadata.labels));
      assert.equal(server.spec.port, 'http');
      const policies = byKind(objects, 'AuthorizationPolicy').filter((p) => p.spec.targetRef.name === `${name}-http`);
      assert.ok(policies.length >= 1);
      const mtls = find(objects, 'MeshTLSAuthentication', `${name}-callers`);
      assert.ok(mtls.spec.identityRefs.some((r: any) => r.name === 'prometheus' && r.namespace === 'monitoring'), 'Prometheus may scrape');
    });
  }

  it('the namespace is meshed and warns on pod templates that are not `restricted`; everything else is denied by default', () => {
    const ns = find(objects, 'Namespace', 'sagamesh');
    assert.equal(ns.metadata.annotations!['linkerd.io/inject'], 'enabled');
    assert.equal(ns.metadata.labels!['pod-security.kubernetes.io/warn'], 'restricted');
    const deny = find(objects, 'NetworkPolicy', 'default-deny-all');
    assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  });
});

describe('synthesized platform: monitoring', () => {
  const podMonitors = byKind(objects, 'PodMonitor');
  const serviceRelabel = { sourceLabels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], targetLabel: 'service' };

  it('one PodMonitor per workload', () => {
    assert.deepEqual(podMonitors.map((p) => p.metadata.name).sort(), [...workloads].sort());
  });

  for (const pm of podMonitors) {
    const name = pm.metadata.name;
    it(`${name}: its PodMonitor sets \`service\` from the pod label that names the service, keeping honorLabels and the operator's namespace/pod`, () => {
      const podLabels = find(objects, 'Deployment', name).spec.template.metadata.labels;
      assert.equal(podLabels['app.kubernetes.io/name'], name, 'the source label carries the service name');
      for (const e of pm.spec.podMetricsEndpoints) {
        assert.equal(e.honorLabels, true);
        assert.deepEqual(e.relabelings, [serviceRelabel]);
        assert.ok(!e.relabelings.some((r: any) => ['namespace', 'pod'].includes(r.targetLabel)), 'namespace and pod stay the operator defaults');
      }
    });
  }
});

describe('synthesized platform: the paths the architecture uses, and no others', () => {
  const np = (name: string) => find(objects, 'NetworkPolicy', name).spec;
  const ports = (rule: any) => rule.ports?.map((p: any) => p.port) ?? [];

  it('only the gateway (and Prometheus) may reach orders; the gateway may reach only orders over HTTP', () => {
    const orders = np('orders');
    const callerRule = orders.ingress.find((r: any) => r.from?.some((f: any) => f.podSelector?.matchExpressions));
    assert.deepEqual(callerRule.from[0].podSelector.matchExpressions, [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['gateway'] }]);
    assert.deepEqual(ports(callerRule), [Ports.orders, LinkerdPorts.inbound]);
    assert.ok(orders.ingress.every((r: any) => r.from), 'orders is not open to anywhere');
    const gwHttpEgress = np('gateway').egress.filter((r: any) => r.to?.some((t: any) => t.podSelector && !t.namespaceSelector));
    assert.deepEqual(gwHttpEgress.map((r: any) => r.to[0].podSelector.matchLabels['app.kubernetes.io/name']), ['orders']);
  });

  it('the gateway alone is reachable from outside (its NodePort), on its port only', () => {
    for (const name of workloads) {
      const open = np(name).ingress.filter((r: any) => !r.from);
      if (name === 'gateway') assert.deepEqual(open.map(ports), [[Ports.gateway]]);
      else assert.equal(open.length, 0, name);
    }
    assert.equal(find(objects, 'Service', 'gateway').spec.type, 'NodePort');
    assert.equal(find(objects, 'Service', 'gateway').spec.ports[0].nodePort, 30080);
  });

  it('everyone reaches NATS, DNS and the Linkerd control plane; Prometheus reaches the app, proxy admin and inbound ports', () => {
    for (const name of workloads) {
      const spec = np(name);
      const nsOf = (r: any) => r.to?.[0]?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
      assert.deepEqual(ports(spec.egress.find((r: any) => nsOf(r) === 'nats')), [4222], name);
      assert.ok(spec.egress.find((r: any) => nsOf(r) === 'kube-system'), name);
      assert.ok(spec.egress.find((r: any) => nsOf(r) === 'linkerd'), name);
      const prom = spec.ingress.find((r: any) => r.from?.[0]?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring');
      assert.deepEqual(prom.from[0].podSelector.matchLabels, { 'app.kubernetes.io/name': 'prometheus' });
      assert.ok([LinkerdPorts.admin, LinkerdPorts.inbound].every((p) => ports(prom).includes(p)), name);
    }
  });

  it('only the operator may leave the pod network (to the kube-apiserver)', () => {
    for (const name of workloads) {
      const ip = np(name).egress.filter((r: any) => r.to?.some((t: any) => t.ipBlock));
      if (name === 'operator') assert.deepEqual(ip.map(ports), [[443, 6443]]);
      else assert.equal(ip.length, 0, name);
    }
  });

  it('Linkerd: only the gateway (and Prometheus) are authenticated callers of orders; the gateway also admits unauthenticated clients', () => {
    const orders = find(objects, 'MeshTLSAuthentication', 'orders-callers');
    assert.deepEqual(orders.spec.identityRefs.map((r: any) => r.name).sort(), ['gateway', 'prometheus']);
    for (const name of ['orchestrator', 'inventory', 'payments', 'shipping', 'notifications', 'operator']) {
      assert.deepEqual(find(objects, 'MeshTLSAuthentication', `${name}-callers`).spec.identityRefs.map((r: any) => r.name), ['prometheus'], name);
    }
    const publicPolicies = byKind(objects, 'AuthorizationPolicy').filter((p) => p.spec.requiredAuthenticationRefs.some((r: any) => r.kind === 'NetworkAuthentication'));
    assert.deepEqual(publicPolicies.map((p) => p.spec.targetRef.name), ['gateway-http']);
  });

  it('Linkerd HTTPRoutes on orders: GETs retried on 5xx with a per-try timeout; writes only timed out', () => {
    const routes = byKind(objects, 'HTTPRoute');
    assert.deepEqual(routes.map((r) => r.metadata.name).sort(), ['orders-reads', 'orders-writes']);
    const reads = find(objects, 'HTTPRoute', 'orders-reads');
    assert.deepEqual(reads.spec.parentRefs, [{ group: 'core', kind: 'Service', name: 'orders', port: Ports.orders }]);
    assert.deepEqual(reads.spec.rules[0].matches.map((m: any) => m.method), ['GET', 'HEAD']);
    assert.equal(reads.metadata.annotations!['retry.linkerd.io/http'], '5xx');
    assert.equal(reads.metadata.annotations!['retry.linkerd.io/limit'], '2');
    const writes = find(objects, 'HTTPRoute', 'orders-writes');
    assert.ok(writes.metadata.annotations!['timeout.linkerd.io/request']);
    assert.ok(!Object.keys(writes.metadata.annotations!).some((k) => k.startsWith('retry.')), 'writes are never retried by the mesh');
  });

  it('the gateway reads its customer and admin API keys from the Secret `make up` creates; every workload reads NATS from the shared ConfigMap', () => {
    const gw = find(objects, 'Deployment', 'gateway').spec.template.spec.containers[0];
    assert.deepEqual(gw.env.find((e: any) => e.name === 'API_KEYS').valueFrom, { secretKeyRef: { name: 'sagamesh-gateway', key: 'api-keys' } });
    assert.deepEqual(gw.env.find((e: any) => e.name === 'ADMIN_API_KEYS').valueFrom, { secretKeyRef: { name: 'sagamesh-gateway', key: 'admin-api-keys' } });
    assert.ok(!gw.env.some((e: any) => e.name === 'DEV_MODE'), 'never the dev key in a cluster');
    assert.equal(gw.env.find((e: any) => e.name === 'ORDERS_URL').value, `http://orders.sagamesh.svc.cluster.local:${Ports.orders}`);
    const settings = find(objects, 'ConfigMap', 'sagamesh-platform');
    assert.deepEqual(settings.data, { NATS_URL: 'nats://nats.nats.svc.cluster.local:4222', JETSTREAM_REPLICAS: '3', JETSTREAM_STORE_MIB: '1536' });
    // The URL names the NATS construct's client Service, on its client port.
    const natsService = find(objects, 'Service', 'nats');
    assert.equal(natsService.metadata.namespace, 'nats');
    assert.equal(natsService.spec.ports[0].port, 4222);
    for (const d of deployments) assert.deepEqual(d.spec.template.spec.containers[0].envFrom, [{ configMapRef: { name: 'sagamesh-platform' } }]);
    assert.equal(byKind(objects, 'Secret').length, 0, 'no Secret is ever synthesized (never committed)');
  });
});

describe('synthesized platform: operator RBAC is least privilege', () => {
  const cr = find(objects, 'ClusterRole', 'sagamesh-operator');
  const role = find(objects, 'Role', 'sagamesh-operator');

  it('no wildcards; cluster-wide only on sagamesh.io resources, their status/finalizers, and events', () => {
    for (const r of [...cr.rules, ...role.rules]) {
      for (const k of ['apiGroups', 'resources', 'verbs']) assert.ok(!r[k].includes('*'), JSON.stringify(r));
      assert.ok(!r.verbs.includes('delete') && !r.verbs.includes('deletecollection'), JSON.stringify(r));
    }
    const resources = cr.rules.flatMap((r: any) => r.resources).sort();
    assert.deepEqual(resources, ['events', 'sagadefinitions', 'sagadefinitions/finalizers', 'sagadefinitions/status', 'sagas', 'sagas/finalizers', 'sagas/status']);
    assert.deepEqual(cr.rules.find((r: any) => r.resources.includes('sagas/status')).verbs, ['get', 'update', 'patch']);
  });

  it('the operator is configured for the Lease its Role allows (operator/src/config.ts names), as its pod', () => {
    const env = find(objects, 'Deployment', 'operator').spec.template.spec.containers[0].env;
    const value = (n: string) => env.find((e: any) => e.name === n);
    assert.equal(value('LEASE_NAMESPACE').value, role.metadata.namespace);
    assert.deepEqual([value('LEASE_NAME').value], role.rules.find((r: any) => r.resourceNames).resourceNames);
    assert.deepEqual(value('IDENTITY').valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
  });

  it('leases only in its own namespace, all but create limited to its Lease', () => {
    assert.equal(role.metadata.namespace, 'sagamesh');
    assert.ok(role.rules.every((r: any) => r.apiGroups.join() === 'coordination.k8s.io' && r.resources.join() === 'leases'));
    assert.ok(role.rules.every((r: any) => r.verbs.join() === 'create' || r.resourceNames?.join() === 'sagamesh-operator'));
    const crb = find(objects, 'ClusterRoleBinding', 'sagamesh-operator');
    assert.deepEqual(crb.subjects, [{ kind: 'ServiceAccount', name: 'operator', namespace: 'sagamesh' }]);
  });
});

describe('synthesized platform: config', () => {
  it('the image tag is configurable', () => {
    const objs = synthAll(testConfig({ imageTag: 'v1.2.3' }));
    for (const d of byKind(objs, 'Deployment')) assert.match(d.spec.template.spec.containers[0].image, /^sagamesh\/[a-z]+:v1\.2\.3$/);
  });

  it('ships each dashboard as a ConfigMap for the Grafana sidecar, and refuses a broken one with the file name', () => {
    const cm = find(objects, 'ConfigMap', 'dashboard-golden-signals');
    assert.equal(cm.metadata.labels!.grafana_dashboard, '1');
    assert.equal(JSON.parse(cm.data['golden-signals.json']).title, 'Golden signals');
    assert.throws(() => synthAll(testConfig({ dashboards: [{ name: 'bad', json: '{"title": ' }] })), /dashboards\/bad\.json is not valid JSON/);
    assert.throws(() => synthAll(testConfig({ dashboards: [{ name: 'pkg', json: '{"name": "x"}' }] })), /not a Grafana dashboard/);
    assert.deepEqual(byKind(synthAll(testConfig({ dashboards: [] })), 'ConfigMap').map((c) => c.metadata.name).sort(), ['nats', 'sagamesh-platform'], 'no dashboard ConfigMap without dashboards');
  });

  it('passes the CRDs through unchanged (one source of truth) and refuses anything else', () => {
    const crds = testConfig().crds;
    assert.deepEqual(synthPlatform(testConfig())[0]!.objects, crds);
    assert.throws(() => synthPlatform(testConfig({ crds: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }] })), /not a CustomResourceDefinition/);
  });

  it('ships monitoring/rules/*.yml as one PrometheusRule in the namespace, its groups equal to the files', () => {
    const files = readdirSync(RULES_DIR).filter((f) => f.endsWith('.yml')).sort();
    assert.ok(files.length > 0, 'monitoring/rules has rule files');
    const expected = files.flatMap((f) => parse(readFileSync(path.join(RULES_DIR, f), 'utf8')).groups);
    const rules = byKind(objects, 'PrometheusRule');
    assert.equal(rules.length, 1);
    const rule = rules[0]!;
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rule.metadata.namespace, 'sagamesh');
    assert.equal(rule.metadata.labels!['app.kubernetes.io/part-of'], 'sagamesh');
    assert.deepEqual(rule.spec.groups, expected);
    const names = rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert ?? r.record));
    assert.ok(names.includes('SagaStuck') && names.includes('sagamesh:saga_success_ratio:rate5m'), names.join(', '));
  });

  it('refuses a broken rule file with its name; no rule files means no PrometheusRule', () => {
    const withRules = (...ruleFiles: { file: string; yaml: string }[]) => () => synthAll(testConfig({ ruleFiles }));
    assert.throws(withRules({ file: 'bad.yml', yaml: 'groups: [' }), /monitoring\/rules\/bad\.yml is not valid YAML/);
    assert.throws(withRules({ file: 'none.yml', yaml: 'rules: []' }), /monitoring\/rules\/none\.yml is not a Prometheus rule file/);
    assert.throws(withRules({ file: 'anon.yml', yaml: 'groups: [{ rules: [] }]' }), /anon\.yml: groups\[0\] needs a "name" and a "rules" list/);
    const group = 'groups: [{ name: g, rules: [{ record: "a:b", expr: "1" }] }]';
    assert.throws(withRules({ file: 'a.yml', yaml: group }, { file: 'b.yml', yaml: group }), /rule group "g" is in both monitoring\/rules\/a\.yml and monitoring\/rules\/b\.yml/);
    assert.equal(byKind(synthAll(testConfig({ ruleFiles: [] })), 'PrometheusRule').length, 0);
  });

  it('synthesis is deterministic', () => {
    assert.deepEqual(synthAll(), synthAll());
  });
});

describe('synthesized platform: NATS, one JetStream cluster for every workload', () => {
  const sts = find(objects, 'StatefulSet', 'nats');

  it('three servers in the nats namespace, also on kind\'s control plane (three nodes for three servers)', () => {
    assert.equal(sts.metadata.namespace, 'nats');
    assert.equal(sts.spec.replicas, 3);
    assert.deepEqual(sts.spec.template.spec.tolerations, [KIND_CONTROL_PLANE_TOLERATION]);
    assert.equal(find(objects, 'Namespace', 'nats').metadata.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('streams and buckets get as many replicas as a JetStream cluster of this size keeps (JETSTREAM_REPLICAS)', () => {
    assert.equal(find(objects, 'ConfigMap', 'sagamesh-platform').data.JETSTREAM_REPLICAS, '3');
    const single = synthAll(testConfig({ nats: { ...PLATFORM_DEFAULTS.nats, replicas: 1 } }));
    assert.equal(find(single, 'ConfigMap', 'sagamesh-platform').data.JETSTREAM_REPLICAS, '1');
    assert.equal(find(single, 'StatefulSet', 'nats').spec.replicas, 1);
  });

  it('admits clients only from the platform\'s workloads, on the port their own policies open', () => {
    const np = find(objects, 'NetworkPolicy', 'nats');
    const client = np.spec.ingress.find((r: any) => r.ports[0].port === 4222);
    assert.deepEqual(client.from, [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sagamesh' } },
        podSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: [...WORKLOADS, PROVISION_JOB].sort() }] },
      },
    ]);
    assert.deepEqual([...WORKLOADS].sort(), deployments.map((d) => d.metadata.name).sort(), 'every Deployment is a NATS client');
  });

  it('every workload logs in to NATS as its own identity, with its own key of the passwords Secret', () => {
    for (const d of deployments) {
      const env = d.spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[];
      assert.equal(env.find((e) => e.name === 'NATS_USER')?.value, d.metadata.name, `${d.metadata.name}: NATS_USER`);
      assert.deepEqual(env.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom, { secretKeyRef: { name: 'nats-users', key: d.metadata.name } }, `${d.metadata.name}: NATS_PASSWORD`);
    }
    const job = find(objects, 'Job', PROVISION_JOB);
    const env = job.spec.template.spec.containers[0].env;
    assert.deepEqual(env, [
      { name: 'NATS_USER', value: 'admin' },
      { name: 'NATS_PASSWORD', valueFrom: { secretKeyRef: { name: 'nats-users', key: 'admin' } } },
    ]);
  });

  it('the servers know every identity, with the permissions the contracts derive and passwords only by reference', () => {
    const conf = find(objects, 'ConfigMap', 'nats').data['nats.conf'] as string;
    for (const identity of NatsIdentities) {
      assert.ok(conf.includes(`user: "${identity}"\n`), `user ${identity} in the config`);
      assert.ok(conf.includes(`password: $${passwordEnvName(identity)}\n`), `${identity}'s password is an env reference`);
    }
    const payments = natsAccount('nats-users').users.find((u) => u.user === 'payments')!;
    assert.deepEqual(payments.permissions?.publish?.allow, natsPermissions('payments').publish.allow);
    assert.ok(payments.permissions?.publish?.deny?.includes('$JS.API.STREAM.DELETE.>'), 'a service may not delete streams');
    const env = sts.spec.template.spec.containers[0].env as { name: string; valueFrom?: any }[];
    assert.deepEqual(env.find((e) => e.name === passwordEnvName('admin'))?.valueFrom, { secretKeyRef: { name: 'nats-users', key: 'admin' } });
  });

  it('the provisioning Job is hardened, not meshed, and reaches only DNS and NATS', () => {
    const job = find(objects, 'Job', PROVISION_JOB);
    const pod = job.spec.template.spec;
    assert.equal(job.spec.template.metadata.annotations['linkerd.io/inject'], 'disabled');
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.containers[0].securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(pod.containers[0].securityContext.readOnlyRootFilesystem, true);
    const np = find(objects, 'NetworkPolicy', PROVISION_JOB);
    assert.deepEqual(np.spec.ingress, []);
    assert.deepEqual(np.spec.egress.map((r: any) => r.ports.map((p: any) => p.port)), [[53, 53], [4222]]);
  });

  it('a change of the platform settings rolls every workload (envFrom is read at start)', () => {
    const hash = (objs: K8sObject[]) => new Set(byKind(objs, 'Deployment').map((d) => d.spec.template.metadata.annotations['sagamesh.io/platform-config-sha256']));
    const off = hash(objects);
    // One NATS server instead of three: JETSTREAM_REPLICAS in the shared ConfigMap changes.
    const on = hash(synthAll(testConfig({ nats: { ...testConfig().nats, replicas: 1 } })));
    assert.equal(off.size, 1);
    assert.equal(on.size, 1);
    assert.notDeepEqual([...off], [...on]);
  });

  it('the default NATS image is the pinned nats-server version (tools/versions.env NATS_SERVER_VERSION)', () => {
    const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
    assert.equal(`v${NATS_VERSION}`, versions.NATS_SERVER_VERSION);
    assert.equal(sts.spec.template.spec.containers[0].image, NATS_DEFAULTS.image);
  });
});

describe('synthesized platform: files that apply without Linkerd or prometheus-operator', () => {
  const files = synthPlatform(testConfig());
  const groupOf = (o: K8sObject) => (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '');

  it('02-platform.yaml holds only kinds Kubernetes serves itself; the CRD-backed kinds are in their own files', () => {
    const platform = files.find((f) => f.file === '02-platform.yaml')!.objects as K8sObject[];
    assert.deepEqual([...new Set(platform.map(groupOf))].sort(), ['', 'apps', 'autoscaling', 'batch', 'networking.k8s.io', 'policy', 'rbac.authorization.k8s.io']);
    assert.ok(platform.some((o) => o.kind === 'StatefulSet') && platform.some((o) => o.kind === 'Deployment'));
    const linkerd = files.find((f) => f.file === '03-linkerd.yaml')!;
    assert.deepEqual([...new Set((linkerd.objects as K8sObject[]).map((o) => o.kind))].sort(), ['AuthorizationPolicy', 'HTTPRoute', 'MeshTLSAuthentication', 'NetworkAuthentication', 'Server']);
    assert.ok((linkerd.objects as K8sObject[]).every((o) => groupOf(o) === 'policy.linkerd.io'));
    const monitoring = files.find((f) => f.file === '04-prometheus-operator.yaml')!;
    assert.deepEqual([...new Set((monitoring.objects as K8sObject[]).map((o) => o.kind))].sort(), ['PodMonitor', 'PrometheusRule']);
  });

  it('each CRD-backed file names the CRDs of exactly the kinds it holds; the built-in files need none', () => {
    for (const f of files) {
      const group = CRD_BACKED_FILES[groupOf(f.objects[0] as K8sObject)!];
      if (!group || f.file === '00-crds.yaml') {
        assert.deepEqual(f.requires, [], f.file);
        continue;
      }
      const crds = [...new Set((f.objects as K8sObject[]).map((o) => group.crds[o.kind]!))].sort();
      assert.deepEqual(f.requires, crds, f.file);
      for (const crd of f.requires) assert.match(crd, new RegExp(`^[a-z]+\\.${groupOf(f.objects[0] as K8sObject)!.replaceAll('.', '\\.')}$`));
    }
    assert.deepEqual(crdRequirements(files), [
      '03-linkerd.yaml needs authorizationpolicies.policy.linkerd.io, httproutes.policy.linkerd.io, meshtlsauthentications.policy.linkerd.io, networkauthentications.policy.linkerd.io, servers.policy.linkerd.io',
      '04-prometheus-operator.yaml needs podmonitors.monitoring.coreos.com, prometheusrules.monitoring.coreos.com',
    ]);
  });

  it('no rule files means no PrometheusRule and only the PodMonitors\' CRD required', () => {
    const noRules = synthPlatform(testConfig({ ruleFiles: [] })).find((f) => f.file === '04-prometheus-operator.yaml')!;
    assert.deepEqual(noRules.requires, ['podmonitors.monitoring.coreos.com']);
  });

  it('refuses a kind of a group it does not know, saying where to add it (so nothing lands in the wrong file)', () => {
    const route = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'x' } };
    assert.throws(() => splitByApi([route]), /gateway\.networking\.k8s\.io\/v1 HTTPRoute is neither built into Kubernetes nor in CRD_BACKED_FILES/);
    const unknownKind = { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'x' } };
    assert.throws(() => splitByApi([unknownKind]), /ServiceMonitor is neither/);
  });
});

describe('synth flags: the online and the offline path', () => {
  const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
  const inputs = { crds: sagameshCrds(), dashboards: [], ruleFiles: readRuleFiles(RULES_DIR) };
  /** FAULT_INJECTION of each Deployment that sets it. */
  const faultSwitches = (objs: K8sObject[]) =>
    Object.fromEntries(
      byKind(objs, 'Deployment')
        .map((d) => [d.metadata.name, d.spec.template.spec.containers[0].env.find((e: any) => e.name === 'FAULT_INJECTION')?.value])
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  const synth = (...args: string[]) => synthPlatform(platformConfig(parseSynthArgs(args), versions, inputs)).flatMap((f) => f.objects as K8sObject[]);

  it('defaults: online images, pulled if absent; fault injection off (the manifests\' default for any deployment)', () => {
    const o = parseSynthArgs([]);
    assert.deepEqual([o.offline, o.faults, o.imageTag, o.help], [false, false, 'dev', false]);
    const objs = synth();
    assert.equal(find(objs, 'StatefulSet', 'nats').spec.template.spec.containers[0].image, `nats:${versions.NATS_SERVER_VERSION!.slice(1)}-alpine`);
    for (const d of byKind(objs, 'Deployment')) assert.equal(d.spec.template.spec.containers[0].imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(faultSwitches(objs), { gateway: 'false', inventory: 'false', payments: 'false', shipping: 'false' });
  });

  it('--offline: nats-server built from the pinned module, app images side-loaded and never pulled', () => {
    const objs = synth('--offline', '--image-tag', 't1');
    const nats = find(objs, 'StatefulSet', 'nats').spec.template.spec.containers[0];
    assert.equal(nats.image, addonImages(versions).natsServer);
    assert.equal(nats.image, `sagamesh-build/nats-server:${versions.NATS_SERVER_VERSION}`);
    assert.equal(nats.imagePullPolicy, 'Never');
    for (const d of byKind(objs, 'Deployment')) {
      assert.match(d.spec.template.spec.containers[0].image, /^sagamesh\/[a-z]+:t1$/);
      assert.equal(d.spec.template.spec.containers[0].imagePullPolicy, 'Never');
    }
  });

  it('--faults: FAULT_INJECTION=true for the gateway and every participant (make up: a local demo cluster), no one else', () => {
    assert.deepEqual(faultSwitches(synth('--faults')), { gateway: 'true', inventory: 'true', payments: 'true', shipping: 'true' });
  });

  it('refuses unknown flags, stray arguments and empty values, with the usage', () => {
    assert.throws(() => parseSynthArgs(['--ofline']), /Unknown option '--ofline'[\s\S]*usage: node cdk8s\/src\/main\.ts/);
    assert.throws(() => parseSynthArgs(['offline']), /Unexpected argument 'offline'[\s\S]*usage:/);
    assert.throws(() => parseSynthArgs(['--image-tag', '']), /--image-tag needs a value/);
    assert.throws(() => synth('--image-tag', 'bad tag'), /imageTag "bad tag" is not a valid image tag/);
    assert.equal(parseSynthArgs(['-h']).help, true);
  });

  it('refuses a missing or malformed NATS_SERVER_VERSION in tools/versions.env', () => {
    assert.throws(() => platformConfig(parseSynthArgs([]), { ...versions, NATS_SERVER_VERSION: '' }, inputs), /NATS_SERVER_VERSION "" must be a version like v2\.15\.2/);
    assert.throws(() => platformConfig(parseSynthArgs([]), { ...versions, NATS_SERVER_VERSION: 'latest' }, inputs), /must be a version/);
  });
});

describe('capacity: the cluster of `make up` on a 2-core machine (three kind nodes sharing those cores)', () => {
  const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
  const platform = synthAll(testConfig({ nats: { ...PLATFORM_DEFAULTS.nats, image: addonImages(versions).natsServer } }));
  const addons = synthOfflineAddons({ images: addonImages(versions), platformObjects: platform, ruleFiles: readRuleFiles(RULES_DIR) }).objects as K8sObject[];
  const millis = (q: string | number) => (typeof q === 'number' ? q * 1000 : q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000);
  const mib = (q: string) => (q.endsWith('Gi') ? Number(q.slice(0, -2)) * 1024 : Number(q.slice(0, -2)));
  /** Pods of a workload at its lowest and highest count (the HPA's bounds, else the replica count). */
  const podCounts = (objs: K8sObject[], w: K8sObject) => {
    const hpa = byKind(objs, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === w.metadata.name && h.metadata.namespace === w.metadata.namespace);
    return hpa ? [hpa.spec.minReplicas, hpa.spec.maxReplicas] : [w.spec.replicas ?? 1, w.spec.replicas ?? 1];
  };
  const sum = (objs: K8sObject[], at: 0 | 1, of: (c: any) => number) =>
    objs
      .filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind))
      .reduce((n, w) => n + podCounts(objs, w)[at]! * w.spec.template.spec.containers.reduce((m: number, c: any) => m + of(c), 0), 0);
  // kind's control plane (apiserver 250m, controller-manager 200m, scheduler 100m, etcd 100m), CoreDNS 2 × 100m,
  // a CNI agent per node (100m each): what the nodes' 3 × 2000m allocatable CPU already carries.
  const SYSTEM_MILLIS = 250 + 200 + 100 + 100 + 2 * 100 + 3 * 100;
  const ALLOCATABLE_MILLIS = 3 * 2000;

  it('at rest, the request path and every other service but inventory (one writer) run two replicas and everything fits on the two workers', () => {
    for (const name of ServiceNames) assert.ok(podCounts(platform, find(platform, 'Deployment', name))[0]! >= (name === 'inventory' ? 1 : 2), name);
    const atRest = sum(platform, 0, (c) => millis(c.resources.requests.cpu)) + sum(addons, 0, (c) => millis(c.resources.requests.cpu));
    assert.ok(atRest <= 2 * 2000 - 2 * 100 - 2 * 100, `CPU requests at rest ${atRest}m`);
  });

  it('at every HPA\'s maximum, the CPU requests still fit with a quarter of the cluster left', () => {
    const atMax = sum(platform, 1, (c) => millis(c.resources.requests.cpu)) + sum(addons, 1, (c) => millis(c.resources.requests.cpu));
    assert.ok(atMax <= 0.75 * (ALLOCATABLE_MILLIS - SYSTEM_MILLIS), `CPU requests at the maximum ${atMax}m of ${ALLOCATABLE_MILLIS - SYSTEM_MILLIS}m`);
  });

  it('gateway and orders scale on a small CPU request with a generous limit (utilisation = usage ÷ request)', () => {
    for (const name of ['gateway', 'orders']) {
      const c = find(platform, 'Deployment', name).spec.template.spec.containers[0];
      const req = millis(c.resources.requests.cpu);
      assert.ok(req >= 25 && req <= 100, `${name} CPU request ${req}m`);
      assert.ok(millis(c.resources.limits.cpu) >= 10 * req, `${name} limit ≥ 10 × request, so a busy pod is not throttled before the HPA reacts`);
      // Two pods at the target use this much CPU in all: the rate of `make load` must drive more than this.
      const hpa = byKind(platform, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === name)!;
      assert.ok(2 * req * (hpa.spec.metrics[0].containerResource.target.averageUtilization / 100) <= 50, `${name} scales out above 50m of CPU`);
    }
  });

  it('memory limits at every maximum stay within the machine\'s 24 GiB with room for builds', () => {
    const limits = sum(platform, 1, (c) => mib(c.resources.limits.memory)) + sum(addons, 1, (c) => mib(c.resources.limits.memory));
    assert.ok(limits <= 16 * 1024, `memory limits at the maximum ${limits} MiB`);
  });
});
