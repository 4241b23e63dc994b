import { Ports, type ServiceName } from '@sagamesh/contracts';
import { ApiObject, App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
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
  readonly cluster: ClusterRefs;
}

export const PLATFORM_DEFAULTS: Omit<PlatformConfig, 'crds' | 'dashboards'> = {
  imageTag: 'dev',
  gatewayNodePort: 30080,
  apiKeySecret: { name: 'sagamesh-gateway', key: 'api-keys' },
  cluster: DEFAULT_CLUSTER,
};

/** The ConfigMap every workload reads its NATS connection from. */
export const NATS_CONFIGMAP = 'sagamesh-nats';

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
