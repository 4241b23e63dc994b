import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ports, ServiceNames } from '@sagamesh/contracts';
import { LinkerdPorts } from '../src/cluster.ts';
import { synthPlatform } from '../src/platform.ts';
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

  it('writes CRDs, then the namespace, then the rest; every namespaced object is in the sagamesh namespace', () => {
    const files = synthPlatform(testConfig());
    assert.deepEqual(files.map((f) => f.file), ['00-crds.yaml', '01-namespace.yaml', '02-platform.yaml']);
    assert.ok(files[0]!.objects.length >= 2 && files[0]!.objects.every((o) => o.kind === 'CustomResourceDefinition'));
    assert.deepEqual(files[1]!.objects.map((o) => o.kind), ['Namespace']);
    for (const o of files[2]!.objects as K8sObject[]) {
      if (['ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) assert.equal(o.metadata.namespace, undefined);
      else assert.equal(o.metadata.namespace, 'sagamesh', `${o.kind}/${o.metadata.name}`);
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

    it(`${name}: probes on the kit's /livez and /readyz at its contracts port`, () => {
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

    it(`${name}: ${name === 'operator' ? 'two replicas, no HPA (leader election)' : 'an autoscaling/v2 HPA on the app container CPU, fast up, ~60 s down'}`, () => {
      const hpa = byKind(objects, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === name);
      if (name === 'operator') {
        assert.equal(hpa, undefined);
        assert.equal(d.spec.replicas, 2);
        return;
      }
      assert.ok(hpa, 'HPA');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.equal(d.spec.replicas, undefined, 'the HPA owns the replica count');
      assert.deepEqual(hpa.spec.metrics, [{ type: 'ContainerResource', containerResource: { name: 'cpu', container: 'app', target: { type: 'Utilization', averageUtilization: 70 } } }]);
      assert.equal(hpa.spec.behavior.scaleUp.stabilizationWindowSeconds, 0);
      assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 60);
      assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas);
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

  it('the gateway reads its API key from the Secret `make up` creates, and NATS from the shared ConfigMap', () => {
    const gw = find(objects, 'Deployment', 'gateway').spec.template.spec.containers[0];
    assert.deepEqual(gw.env.find((e: any) => e.name === 'API_KEYS').valueFrom, { secretKeyRef: { name: 'sagamesh-gateway', key: 'api-keys' } });
    assert.equal(gw.env.find((e: any) => e.name === 'ORDERS_URL').value, `http://orders.sagamesh.svc.cluster.local:${Ports.orders}`);
    assert.equal(find(objects, 'ConfigMap', 'sagamesh-nats').data.NATS_URL, 'nats://nats.nats.svc.cluster.local:4222');
    for (const d of deployments) assert.deepEqual(d.spec.template.spec.containers[0].envFrom, [{ configMapRef: { name: 'sagamesh-nats' } }]);
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
    assert.equal(byKind(synthAll(testConfig({ dashboards: [] })), 'ConfigMap').length, 1, 'only the NATS ConfigMap without dashboards');
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
