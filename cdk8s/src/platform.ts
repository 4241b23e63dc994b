import { Ports, type ServiceName } from '@sagamesh/contracts';
import { ApiObject, App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { parse as parseYaml } from 'yaml';
import { type ClusterRefs, DEFAULT_CLUSTER, natsUrl, PART_OF } from './cluster.ts';
import { defaultDenyPolicy } from './network.ts';
import { SagaOperator } from './operator.ts';
import { SagameshService, type SagameshServiceProps } from './service.ts';

export interface Dashboard {
  /** File name without `.json`, e.g. `golden-signals`. */
  readonly name: string;
  /** The dashboard JSON, as written in dashboards/<name>.json. */
  readonly json: string;
}

/** One Prometheus rule file (monitoring/rules/*.yml), as written. */
export interface RuleFile {
  /** File name, e.g. `sagamesh.yml`. */
  readonly file: string;
  readonly yaml: string;
}

export interface PlatformConfig {
  /** Tag of every `sagamesh/<service>` image. @default `dev` */
  readonly imageTag: string;
  /** NodePort of the gateway (kind-config.yaml maps it to localhost:8080). @default 30080 */
  readonly gatewayNodePort: number;
  /** The Secret `make up` creates with the gateway's API key(s) (never committed). */
  readonly apiKeySecret: { readonly name: string; readonly key: string };
  /** The CRDs (from services/contracts' generator: one source of truth). */
  readonly crds: readonly Record<string, unknown>[];
  /** Grafana dashboards (dashboards/*.json), shipped as ConfigMaps for the Grafana sidecar. */
  readonly dashboards: readonly Dashboard[];
  /** Recording and alerting rules (monitoring/rules/*.yml), shipped as one PrometheusRule. @default none: no PrometheusRule */
  readonly ruleFiles?: readonly RuleFile[];
  readonly cluster: ClusterRefs;
}

export const PLATFORM_DEFAULTS: Omit<PlatformConfig, 'crds' | 'dashboards' | 'ruleFiles'> = {
  imageTag: 'dev',
  gatewayNodePort: 30080,
  apiKeySecret: { name: 'sagamesh-gateway', key: 'api-keys' },
  cluster: DEFAULT_CLUSTER,
};

/** The ConfigMap every workload reads its NATS connection from. */
export const NATS_CONFIGMAP = 'sagamesh-nats';

/** The PrometheusRule carrying monitoring/rules/*.yml. */
export const PROMETHEUS_RULE = 'sagamesh';

/**
 * Who talks to whom over HTTP (everything else goes through NATS). One table, from which the
 * NetworkPolicies, the Linkerd authorizations and the gateway's upstream URL all follow.
 */
export function serviceTopology(config: PlatformConfig): Record<ServiceName, Omit<SagameshServiceProps, 'cluster' | 'imageTag'>> {
  const ns = config.cluster.namespace;
  const base = (name: ServiceName) => ({ name, port: Ports[name], envFromConfigMaps: [NATS_CONFIGMAP] });
  return {
    gateway: {
      ...base('gateway'),
      nodePort: config.gatewayNodePort,
      calls: [{ name: 'orders', port: Ports.orders }],
      env: { ORDERS_URL: `http://orders.${ns}.svc.cluster.local:${Ports.orders}` },
      secretEnv: { API_KEYS: { secret: config.apiKeySecret.name, key: config.apiKeySecret.key } },
      autoscaling: { minReplicas: 1, maxReplicas: 6, targetCpuUtilization: 70, scaleDownStabilizationSeconds: 60 },
    },
    orders: { ...base('orders'), callers: ['gateway'] },
    orchestrator: base('orchestrator'),
    inventory: base('inventory'),
    payments: base('payments'),
    shipping: base('shipping'),
    notifications: base('notifications'),
  };
}

export interface SynthFile {
  /** File name under cdk8s/dist, applied in this order. */
  readonly file: string;
  readonly objects: readonly Record<string, unknown>[];
}

const DASHBOARD_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The rule groups of every file, in file order. The operator writes one PrometheusRule into one rule
 * file, and Prometheus refuses a file with two groups of the same name: refused here, naming both files.
 */
export function ruleGroups(files: readonly RuleFile[]): Record<string, unknown>[] {
  const groups: Record<string, unknown>[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const where = `monitoring/rules/${f.file}`;
    let doc: unknown;
    try {
      doc = parseYaml(f.yaml);
    } catch (err) {
      throw new Error(`${where} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    const list = doc && typeof doc === 'object' ? (doc as { groups?: unknown }).groups : undefined;
    if (!Array.isArray(list)) throw new Error(`${where} is not a Prometheus rule file (no "groups" list)`);
    list.forEach((g: unknown, i) => {
      const group = g as { name?: unknown; rules?: unknown } | null;
      if (!group || typeof group !== 'object' || typeof group.name !== 'string' || !Array.isArray(group.rules)) {
        throw new Error(`${where}: groups[${i}] needs a "name" and a "rules" list`);
      }
      const other = seen.get(group.name);
      if (other) throw new Error(`rule group "${group.name}" is in both monitoring/rules/${other} and ${where}: rename one (Prometheus refuses duplicate group names)`);
      seen.set(group.name, f.file);
      groups.push(group as Record<string, unknown>);
    });
  }
  return groups;
}

/** Builds the whole app into charts (pure: config in, constructs out). */
export function buildPlatform(app: App, config: PlatformConfig): { crds: Chart; namespace: Chart; platform: Chart } {
  const ns = config.cluster.namespace;
  const crds = new Chart(app, 'crds');
  config.crds.forEach((crd, i) => {
    const { apiVersion, kind, ...rest } = crd as { apiVersion: string; kind: string };
    if (kind !== 'CustomResourceDefinition') throw new Error(`crds[${i}] is a ${kind}, not a CustomResourceDefinition: pass only CRDs`);
    new ApiObject(crds, `crd-${i}`, { apiVersion, kind, ...rest });
  });

  const namespace = new Chart(app, 'namespace');
  new kplus.k8s.KubeNamespace(namespace, 'ns', {
    metadata: {
      name: ns,
      labels: {
        'app.kubernetes.io/part-of': PART_OF,
        // Pod templates are checked against `restricted`; not enforced, because Linkerd's proxy-init
        // (injected at admission) needs NET_ADMIN/NET_RAW, which `restricted` forbids.
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/audit': 'restricted',
      },
      annotations: { 'linkerd.io/inject': 'enabled' },
    },
  });

  const platform = new Chart(app, 'platform');
  new kplus.ConfigMap(platform, 'nats-config', {
    metadata: { name: NATS_CONFIGMAP, namespace: ns, labels: { 'app.kubernetes.io/part-of': PART_OF } },
    data: { NATS_URL: natsUrl(config.cluster) },
  });
  defaultDenyPolicy(platform, 'default-deny', ns);
  for (const [name, props] of Object.entries(serviceTopology(config))) {
    new SagameshService(platform, name, { ...props, imageTag: config.imageTag, cluster: config.cluster });
  }
  new SagaOperator(platform, 'operator', { imageTag: config.imageTag, envFromConfigMaps: [NATS_CONFIGMAP], cluster: config.cluster });

  for (const d of config.dashboards) {
    if (!DASHBOARD_NAME.test(d.name)) throw new Error(`dashboard "${d.name}": rename dashboards/${d.name}.json to lower-case letters, digits and '-'`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(d.json);
    } catch (err) {
      throw new Error(`dashboards/${d.name}.json is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as { title?: unknown }).title !== 'string') {
      throw new Error(`dashboards/${d.name}.json is not a Grafana dashboard (no "title"): export the dashboard model JSON`);
    }
    new kplus.ConfigMap(platform, `dashboard-${d.name}`, {
      metadata: {
        name: `dashboard-${d.name}`,
        namespace: ns,
        // The kube-prometheus-stack Grafana sidecar picks up every ConfigMap with this label, in any namespace.
        labels: { grafana_dashboard: '1', 'app.kubernetes.io/part-of': PART_OF },
        annotations: { grafana_folder: 'sagamesh' },
      },
      data: { [`${d.name}.json`]: d.json },
    });
  }

  const groups = ruleGroups(config.ruleFiles ?? []);
  if (groups.length > 0) {
    new ApiObject(platform, 'prometheus-rule', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: PROMETHEUS_RULE,
        namespace: ns,
        // No selector label needed: kube-prometheus-stack's Prometheus selects rules by any label in every
        // namespace (ruleSelectorNilUsesHelmValues: false, charts/values/kube-prometheus-stack.yaml).
        labels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': 'monitoring', 'app.kubernetes.io/managed-by': 'cdk8s' },
      },
      spec: { groups },
    });
  }
  return { crds, namespace, platform };
}

/** Synthesizes the platform into files, in apply order: CRDs, then the namespace, then the rest. */
export function synthPlatform(config: PlatformConfig): SynthFile[] {
  const app = new App({ outdir: '/nonexistent' });
  const charts = buildPlatform(app, config);
  return [
    { file: '00-crds.yaml', objects: charts.crds.toJson() },
    { file: '01-namespace.yaml', objects: charts.namespace.toJson() },
    { file: '02-platform.yaml', objects: charts.platform.toJson() },
  ];
}
