/**
 * The offline cluster's add-ons (cdk8s/src/addons): schemas, hardening, least-privilege RBAC, the image names
 * shared with scripts/cluster/addon-images.sh, and the in-cluster Prometheus — its config valid for promtool,
 * its translated PodMonitors giving the same labels prometheus-operator would, and a scrape job behind every
 * metric the dashboards and rules read.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { panelQueries } from '@sagamesh/dashboards';
import { parse, stringify } from 'yaml';
import { ensureTools, REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';
import { DEFAULT_CLUSTER } from '../src/cluster.ts';
import {
  ADDON_IMAGE_PINS,
  addonImages,
  CADVISOR_KEEP,
  KSM_RESOURCES,
  OFFLINE_ADDONS_FILE,
  offlinePrometheusConfig,
  parseVersionsEnv,
  podMonitorScrapeConfigs,
  type PodMonitorObject,
  synthOfflineAddons,
} from '../src/addons/index.ts';
import { readRuleFiles } from '../src/main.ts';
import { byKind, find, type K8sObject, modelFor, RULES_DIR, synthAll } from './helpers.ts';

const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
const images = addonImages(versions);
const ruleFiles = readRuleFiles(RULES_DIR);
const platform = synthAll();
const objects = synthOfflineAddons({ images, platformObjects: platform, ruleFiles }).objects as K8sObject[];
const promConfig = parse(find(objects, 'ConfigMap', 'prometheus-config').data['prometheus.yml']) as {
  rule_files: string[];
  scrape_configs: ({ job_name: string; relabel_configs?: Relabel[]; metric_relabel_configs?: Relabel[] } & Record<string, any>)[];
};
const jobNames = promConfig.scrape_configs.map((j) => j.job_name);

interface Relabel {
  source_labels?: string[];
  separator?: string;
  target_label?: string;
  regex?: string;
  replacement?: string;
  action?: string;
}

/** Prometheus' relabeling for the actions the config uses (replace, keep, drop): labels out, or undefined when dropped. */
function relabel(labels: Record<string, string>, rules: readonly Relabel[]): Record<string, string> | undefined {
  const out = { ...labels };
  for (const r of rules) {
    const value = (r.source_labels ?? []).map((l) => out[l] ?? '').join(r.separator ?? ';');
    const m = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(value);
    const action = r.action ?? 'replace';
    if (action === 'keep' && !m) return undefined;
    if (action === 'drop' && m) return undefined;
    if (action === 'replace' && m) {
      const v = (r.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, i: string) => m[Number(i)] ?? '');
      if (v === '') delete out[r.target_label!];
      else out[r.target_label!] = v;
    }
  }
  // Prometheus drops the __meta_* labels after relabeling.
  return Object.fromEntries(Object.entries(out).filter(([k]) => !k.startsWith('__')));
}

/** The discovery labels of one container port of a pod (Prometheus' kubernetes_sd, role pod). */
function podTarget(p: { namespace: string; pod: string; labels: Record<string, string>; container: string; port: string; phase?: string }): Record<string, string> {
  const meta: Record<string, string> = {
    __meta_kubernetes_namespace: p.namespace,
    __meta_kubernetes_pod_name: p.pod,
    __meta_kubernetes_pod_phase: p.phase ?? 'Running',
    __meta_kubernetes_pod_container_name: p.container,
    __meta_kubernetes_pod_container_port_name: p.port,
  };
  for (const [k, v] of Object.entries(p.labels)) {
    const n = k.replace(/[^a-zA-Z0-9_]/g, '_');
    meta[`__meta_kubernetes_pod_label_${n}`] = v;
    meta[`__meta_kubernetes_pod_labelpresent_${n}`] = 'true';
  }
  return meta;
}

const podMonitors = byKind(platform, 'PodMonitor') as unknown as PodMonitorObject[];

describe('offline add-ons: objects', () => {
  it('validates every object against the Kubernetes schema of its apiVersion/kind', () => {
    for (const o of objects) {
      const Model = modelFor(o.apiVersion, o.kind);
      assert.ok(Model, `no schema model for ${o.apiVersion} ${o.kind}`);
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name} fails its schema`);
    }
  });

  it('has metrics-server (with its APIService), kube-state-metrics and Prometheus, where make up waits for them', () => {
    const deployments = byKind(objects, 'Deployment').map((d) => `${d.metadata.namespace}/${d.metadata.name}`).sort();
    assert.deepEqual(deployments, ['kube-system/metrics-server', 'monitoring/kube-state-metrics', 'monitoring/prometheus']);
    const api = find(objects, 'APIService', 'v1beta1.metrics.k8s.io');
    assert.deepEqual(api.spec.service, { name: 'metrics-server', namespace: 'kube-system', port: 443 });
    const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'metrics-server')!;
    assert.equal(svc.metadata.namespace, 'kube-system');
    const args: string[] = find(objects, 'Deployment', 'metrics-server').spec.template.spec.containers[0].args;
    assert.ok(args.includes('--kubelet-insecure-tls') && args.includes('--kubelet-preferred-address-types=InternalIP'), args.join(' '));
  });

  it('uses exactly the images scripts/cluster/addon-images.sh builds (same names, same pins)', () => {
    const res = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/cluster/addon-images.sh'), '--names'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const built = res.stdout.trim().split(/\s+/).sort();
    assert.deepEqual(built, Object.values(images).sort());
    assert.deepEqual(Object.values(ADDON_IMAGE_PINS).map((p) => p.versionKey).filter((k) => !versions[k]), []);
    const used = byKind(objects, 'Deployment').flatMap((d) => d.spec.template.spec.containers.map((c: any) => c.image));
    for (const image of used) assert.ok(built.includes(image), `${image} is not built by addon-images.sh`);
    assert.equal(images.prometheus, `sagamesh-build/prometheus:${versions.PROMETHEUS_APP_VERSION}`);
  });

  it('runs every add-on hardened: non-root, read-only root, no capabilities, seccomp, small requests, never pulled', () => {
    let cpuMillis = 0;
    for (const d of byKind(objects, 'Deployment')) {
      const pod = d.spec.template.spec;
      const where = `${d.metadata.namespace}/${d.metadata.name}`;
      assert.equal(pod.securityContext.runAsNonRoot, true, where);
      assert.ok(pod.securityContext.runAsUser > 0, where);
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' }, where);
      for (const c of pod.containers) {
        const sc = c.securityContext;
        assert.equal(sc.readOnlyRootFilesystem, true, where);
        assert.equal(sc.allowPrivilegeEscalation, false, where);
        assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, where);
        assert.equal(c.imagePullPolicy, 'Never', `${where}: side-loaded with kind load; there is no registry to pull from`);
        assert.ok(c.readinessProbe && c.livenessProbe, `${where}: probes`);
        assert.ok(c.resources.requests.cpu && c.resources.limits.cpu && c.resources.requests.memory && c.resources.limits.memory, `${where}: requests and limits`);
        cpuMillis += Number.parseInt(c.resources.requests.cpu, 10);
        for (const p of c.ports) assert.ok(p.containerPort > 1024, `${where}: port ${p.containerPort} needs no capability`);
      }
    }
    assert.ok(cpuMillis <= 150, `the add-ons request ${cpuMillis}m CPU on a 2-core machine shared with the platform`);
    const ns = find(objects, 'Namespace', 'monitoring');
    assert.equal(ns.metadata.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('gives Prometheus the name, service account and pod labels the platform NetworkPolicies let in', () => {
    const d = find(objects, 'Deployment', DEFAULT_CLUSTER.prometheusServiceAccount);
    assert.equal(d.metadata.namespace, DEFAULT_CLUSTER.monitoringNamespace);
    assert.equal(d.spec.template.spec.serviceAccountName, DEFAULT_CLUSTER.prometheusServiceAccount);
    for (const [k, v] of Object.entries(DEFAULT_CLUSTER.prometheusPodLabels)) assert.equal(d.spec.template.metadata.labels[k], v);
    const svc = objects.find((o) => o.kind === 'Service' && o.metadata.namespace === 'monitoring' && o.metadata.name === 'prometheus')!;
    assert.equal(svc.spec.ports[0].port, 9090);
    // The TSDB is an emptyDir; the config and every rule file are mounted where prometheus.yml's rule_files look.
    const vols = d.spec.template.spec.volumes;
    assert.ok(vols.find((v: any) => v.name === 'data').emptyDir.sizeLimit);
    const projected = vols.find((v: any) => v.name === 'config').projected.sources;
    assert.deepEqual(projected[1].configMap.items.map((i: any) => i.path), ruleFiles.map((f) => `rules/${f.file}`));
    assert.deepEqual(promConfig.rule_files, ['rules/*.yml']);
  });

  it('rolls the Prometheus pod when its config or rules change (no reloader)', () => {
    const checksum = (rf: typeof ruleFiles) =>
      find(synthOfflineAddons({ images, platformObjects: platform, ruleFiles: rf }).objects as K8sObject[], 'Deployment', 'prometheus').spec.template.metadata.annotations['sagamesh.io/config-checksum'];
    assert.equal(checksum(ruleFiles), checksum(ruleFiles));
    assert.notEqual(checksum(ruleFiles), checksum([{ ...ruleFiles[0]!, yaml: `${ruleFiles[0]!.yaml}\n# changed\n` }]));
  });

  it('refuses a broken rule file at synth time, not in the pod log', () => {
    assert.throws(() => synthOfflineAddons({ images, platformObjects: platform, ruleFiles: [{ file: 'x.yml', yaml: 'groups: 3' }] }), /not a Prometheus rule file/);
  });
});

describe('offline add-ons: RBAC is least privilege', () => {
  const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  const rulesOf = (kind: string, name: string, ns?: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === ns)!.rules.map((r: any) => ({ ...r, verbs: [...r.verbs].sort() }));

  it('grants only reads, never secrets or configmaps, never a wildcard', () => {
    assert.ok(roles.length >= 4);
    for (const r of roles) {
      for (const rule of r.rules) {
        const where = `${r.kind}/${r.metadata.name}: ${JSON.stringify(rule)}`;
        for (const field of ['apiGroups', 'resources', 'verbs']) assert.ok(!(rule[field] ?? []).includes('*'), where);
        assert.deepEqual(rule.verbs.filter((v: string) => !['get', 'list', 'watch'].includes(v)), [], where);
        assert.ok(!rule.resources.some((res: string) => ['secrets', 'configmaps', 'nodes/proxy', 'pods/exec'].includes(res)), where);
        assert.equal(rule.nonResourceURLs, undefined, where);
      }
    }
  });

  it('Prometheus: node list and nodes/metrics cluster-wide (cAdvisor), pods only in the namespaces it scrapes', () => {
    assert.deepEqual(rulesOf('ClusterRole', 'sagamesh-prometheus'), [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
    ]);
    const podRoles = byKind(objects, 'Role').filter((r) => r.metadata.name === 'sagamesh-prometheus').map((r) => r.metadata.namespace).sort();
    assert.deepEqual(podRoles, ['monitoring', 'sagamesh']);
    for (const ns of podRoles) assert.deepEqual(rulesOf('Role', 'sagamesh-prometheus', ns), [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
  });

  it('metrics-server: pods, nodes and nodes/metrics, plus the two built-in roles of an aggregated API server', () => {
    assert.deepEqual(rulesOf('ClusterRole', 'system:metrics-server'), [
      { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
    ]);
    const refs = objects.filter((o) => /Binding$/.test(o.kind) && o.subjects?.[0]?.name === 'metrics-server').map((b) => b.roleRef.name).sort();
    assert.deepEqual(refs, ['extension-apiserver-authentication-reader', 'system:auth-delegator', 'system:metrics-server']);
  });

  it('kube-state-metrics: list/watch of exactly the resources it is told to collect', () => {
    const args: string[] = find(objects, 'Deployment', 'kube-state-metrics').spec.template.spec.containers[0].args;
    const collected = args.find((a) => a.startsWith('--resources='))!.slice('--resources='.length).split(',').sort();
    const granted = find(objects, 'ClusterRole', 'kube-state-metrics').rules.flatMap((r: any) => r.resources.map((res: string) => `${r.apiGroups[0]}/${res}`)).sort();
    assert.deepEqual(collected, Object.keys(KSM_RESOURCES).sort());
    assert.deepEqual(granted, Object.entries(KSM_RESOURCES).map(([res, g]) => `${g}/${res}`).sort());
  });

  it('every binding names a service account this file creates, in its namespace', () => {
    const sas = new Set(byKind(objects, 'ServiceAccount').map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
    for (const b of objects.filter((o) => /Binding$/.test(o.kind))) {
      for (const s of b.subjects) assert.ok(sas.has(`${s.namespace}/${s.name}`), `${b.kind}/${b.metadata.name} → ${s.namespace}/${s.name}`);
    }
  });
});

describe('offline Prometheus: scrape config', () => {
  it('promtool check config accepts prometheus.yml with the rules loaded', async () => {
    await ensureTools(['promtool']);
    const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-addons-prom-'));
    try {
      // promtool checks that the credentials file exists: point it at a stand-in for the pod's token.
      writeFileSync(path.join(dir, 'token'), 'x');
      const cfg = offlinePrometheusConfig({ podMonitors, kubeStateMetrics: { namespace: 'monitoring', name: 'kube-state-metrics', port: 'http-metrics' }, tokenFile: path.join(dir, 'token') });
      writeFileSync(path.join(dir, 'prometheus.yml'), stringify(cfg));
      mkdirSync(path.join(dir, 'rules'));
      for (const f of ruleFiles) writeFileSync(path.join(dir, 'rules', f.file), f.yaml);
      const res = spawnSync(toolPath('promtool'), ['check', 'config', path.join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      const out = `${res.stdout}${res.stderr}`;
      assert.equal(res.status, 0, out);
      const ruleCount = ruleFiles.reduce((n, f) => n + (parse(f.yaml) as { groups: { rules: unknown[] }[] }).groups.reduce((m, g) => m + g.rules.length, 0), 0);
      assert.match(out, new RegExp(`SUCCESS: ${ruleCount} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the shipped config is the same apart from the token path', () => {
    const shipped = offlinePrometheusConfig({ podMonitors, kubeStateMetrics: { namespace: 'monitoring', name: 'kube-state-metrics', port: 'http-metrics' } });
    assert.deepEqual(promConfig, JSON.parse(JSON.stringify(shipped)));
    assert.equal(promConfig.scrape_configs.find((j) => j.job_name === 'cadvisor')!.authorization.credentials_file, '/var/run/secrets/kubernetes.io/serviceaccount/token');
  });

  it('one job per platform PodMonitor, labelling its pods exactly as prometheus-operator does (job, namespace, pod, container, endpoint, service)', () => {
    assert.ok(podMonitors.length >= 8, `${podMonitors.length} PodMonitors`);
    for (const pm of podMonitors) {
      const name = pm.metadata.name;
      const job = promConfig.scrape_configs.find((j) => j.job_name === `podMonitor/${pm.metadata.namespace}/${name}/0`);
      assert.ok(job, `no scrape config for PodMonitor ${name}`);
      assert.equal(job.honor_labels, true, `${name}: the app's own labels win (DESIGN "Metrics")`);
      const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'sagamesh', 'pod-template-hash': 'abc12' };
      const target = relabel(podTarget({ namespace: 'sagamesh', pod: `${name}-abc12-xyz34`, labels, container: 'app', port: 'http' }), job.relabel_configs!);
      assert.deepEqual(target, { namespace: 'sagamesh', pod: `${name}-abc12-xyz34`, container: 'app', job: `sagamesh/${name}`, endpoint: 'http', service: name });
      // The ServiceDown alert and the "Targets up" panel select these jobs.
      assert.match(target!.job!, /^(?:sagamesh|sagamesh\/.+)$/);
      // Not another workload's pod, not another port, not a finished pod.
      assert.equal(relabel(podTarget({ namespace: 'sagamesh', pod: 'x', labels: { 'app.kubernetes.io/name': `${name}x` }, container: 'app', port: 'http' }), job.relabel_configs!), undefined);
      assert.equal(relabel(podTarget({ namespace: 'sagamesh', pod: 'x', labels, container: 'linkerd-proxy', port: 'linkerd-admin' }), job.relabel_configs!), undefined);
      assert.equal(relabel(podTarget({ namespace: 'sagamesh', pod: 'x', labels, container: 'app', port: 'http', phase: 'Succeeded' }), job.relabel_configs!), undefined);
    }
  });

  it('refuses a PodMonitor field it does not translate, instead of dropping it offline', () => {
    const pm = structuredClone(podMonitors[0]!) as any;
    pm.spec.namespaceSelector = { any: true };
    assert.throws(() => podMonitorScrapeConfigs(pm), /spec\.namespaceSelector is not translated .*scrape-config\.ts/);
    const pm2 = structuredClone(podMonitors[0]!) as any;
    pm2.spec.podMetricsEndpoints[0].bearerTokenSecret = { name: 's', key: 'k' };
    assert.throws(() => podMonitorScrapeConfigs(pm2), /podMetricsEndpoints\[0\]\.bearerTokenSecret is not translated/);
  });

  it('scrapes kube-state-metrics (its labels win), the kubelets\' cAdvisor with the pod\'s token, and itself', () => {
    assert.deepEqual(jobNames.filter((j) => !j.startsWith('podMonitor/')), ['kube-state-metrics', 'cadvisor', 'prometheus']);
    const ksm = promConfig.scrape_configs.find((j) => j.job_name === 'kube-state-metrics')!;
    assert.equal(ksm.honor_labels, true);
    const ksmPod = podTarget({ namespace: 'monitoring', pod: 'kube-state-metrics-1', labels: find(objects, 'Deployment', 'kube-state-metrics').spec.template.metadata.labels, container: 'kube-state-metrics', port: 'http-metrics' });
    assert.deepEqual(relabel(ksmPod, ksm.relabel_configs!), {});
    assert.equal(relabel({ ...ksmPod, __meta_kubernetes_pod_container_port_name: 'telemetry' }, ksm.relabel_configs!), undefined);
    const cadvisor = promConfig.scrape_configs.find((j) => j.job_name === 'cadvisor')!;
    assert.equal(cadvisor.scheme, 'https');
    assert.equal(cadvisor.metrics_path, '/metrics/cadvisor');
    assert.deepEqual(cadvisor.kubernetes_sd_configs, [{ role: 'node' }]);
  });
});

describe('offline Prometheus: every metric a dashboard panel (not Linkerd-only) or a rule reads has a scrape job', () => {
  /** Metric names a PromQL expression selects (strings, label matchers, ranges and grouping lists removed). */
  function metricNames(expr: string): string[] {
    const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
    const bare = expr
      .replace(/"(?:[^"\\]|\\.)*"/g, '""')
      .replace(/\{[^}]*\}/g, ' ')
      .replace(/\[[^\]]*\]/g, ' ')
      .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
    return [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)].filter((m) => !m[2] && !KEYWORDS.has(m[1]!.toLowerCase())).map((m) => m[1]!);
  }

  const ruleDocs = ruleFiles.map((f) => parse(f.yaml) as { groups: { rules: { record?: string; expr: string }[] }[] });
  const recorded = new Set(ruleDocs.flatMap((d) => d.groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : [])))));
  const platformJobs = jobNames.filter((j) => j.startsWith('podMonitor/'));
  const cadvisorKeep = new RegExp(`^(?:${promConfig.scrape_configs.find((j) => j.job_name === 'cadvisor')!.metric_relabel_configs![0]!.regex})$`);
  const KSM_FAMILY: Record<string, string> = { kube_horizontalpodautoscaler_: 'horizontalpodautoscalers', kube_deployment_: 'deployments', kube_pod_: 'pods' };

  /** Which job provides a metric, or why none does. */
  function provider(metric: string): { job?: string; problem?: string } {
    if (recorded.has(metric)) return { job: 'rules' };
    if (/^(sagamesh_|process_|nodejs_)/.test(metric) || metric === 'up') {
      return platformJobs.length > 0 ? { job: 'platform PodMonitors' } : { problem: 'no platform scrape job' };
    }
    if (metric.startsWith('kube_')) {
      if (!jobNames.includes('kube-state-metrics')) return { problem: 'no kube-state-metrics job' };
      const family = Object.keys(KSM_FAMILY).find((p) => metric.startsWith(p));
      if (!family) return { problem: 'a kube-state-metrics family this test does not know: add it to KSM_FAMILY' };
      return KSM_RESOURCES[KSM_FAMILY[family]!] !== undefined ? { job: 'kube-state-metrics' } : { problem: `kube-state-metrics does not collect ${KSM_FAMILY[family]}` };
    }
    if (metric.startsWith('container_')) {
      if (!jobNames.includes('cadvisor')) return { problem: 'no cadvisor job' };
      return cadvisorKeep.test(metric) ? { job: 'cadvisor' } : { problem: 'dropped by the cadvisor job\'s metric_relabel_configs (CADVISOR_KEEP)' };
    }
    return { problem: 'no scrape job provides it' };
  }

  it('finds the metric names in PromQL (so the check below can fail)', () => {
    assert.deepEqual(metricNames('sum by (service, le) (rate(a_b{x=~"y{z}", route!~"/metrics"}[5m])) / on (service) label_replace(max by (d) (c), "s", "$1", "d", "(.+)") or vector(0)'), ['a_b', 'c']);
    assert.deepEqual(metricNames('sagamesh:x:rate5m < 0.95 and max by (n) (m_total) > 0'), ['sagamesh:x:rate5m', 'm_total']);
    assert.equal(provider('node_cpu_seconds_total').problem, 'no scrape job provides it');
    assert.match(provider('container_fs_reads_total').problem!, /CADVISOR_KEEP/);
  });

  it('dashboards/*.json', () => {
    const files = readdirSync(path.join(REPO_ROOT, 'dashboards')).filter((f) => f.endsWith('.json') && !/^(package|tsconfig)/.test(f));
    assert.ok(files.length >= 4, files.join(', '));
    const problems: string[] = [];
    let checked = 0;
    for (const f of files) {
      for (const q of panelQueries(JSON.parse(readFileSync(path.join(REPO_ROOT, 'dashboards', f), 'utf8')) as object)) {
        if (q.requiresCluster && /linkerd/i.test(q.requiresCluster)) continue;
        for (const m of metricNames(q.expr)) {
          checked++;
          const p = provider(m);
          if (p.problem) problems.push(`${f} "${q.panel}": ${m}: ${p.problem}`);
        }
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked > 40, `${checked} metric references checked`);
  });

  it('monitoring/rules', () => {
    const problems = ruleDocs.flatMap((d) => d.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr).flatMap((m) => (provider(m).problem ? [`${r.record ?? (r as any).alert}: ${m}: ${provider(m).problem}`] : [])))));
    assert.deepEqual(problems, []);
  });

  it('keeps the cAdvisor series the dashboards need', () => {
    assert.ok((CADVISOR_KEEP as readonly string[]).includes('container_cpu_usage_seconds_total'));
  });
});

describe('offline add-ons: synth', () => {
  it(`main.ts --offline writes ${OFFLINE_ADDONS_FILE} beside the platform's files; without it, none`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-addons-synth-'));
    try {
      const main = path.join(REPO_ROOT, 'cdk8s/src/main.ts');
      for (const [flags, sub] of [[['--offline'], 'offline'], [[], 'online']] as const) {
        const res = spawnSync(process.execPath, [main, '--out', path.join(dir, sub), ...flags], { encoding: 'utf8' });
        assert.equal(res.status, 0, res.stderr);
      }
      assert.ok(existsSync(path.join(dir, 'offline', OFFLINE_ADDONS_FILE)));
      assert.ok(!existsSync(path.join(dir, 'online', OFFLINE_ADDONS_FILE)));
      // Applied after the platform's namespace exists (make up applies dist/ in name order): its Roles live there.
      const files = readdirSync(path.join(dir, 'offline')).sort();
      assert.ok(files.indexOf(OFFLINE_ADDONS_FILE) > files.indexOf('01-namespace.yaml'), files.join(', '));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
