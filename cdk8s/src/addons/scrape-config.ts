/**
 * The offline Prometheus' configuration (prometheus.yml), pure. No prometheus-operator runs offline, so the
 * platform's PodMonitors are translated here into the scrape configs the operator would generate from them:
 * the same `job` (`<namespace>/<PodMonitor name>`), `namespace`, `pod`, `container`, `endpoint` labels and
 * the PodMonitor's own relabelings (for the PodMonitor fields the platform uses; any other is refused) — so the dashboards and the rules see the same series on both paths.
 */
import { podLabelMeta } from '../service.ts';

type Json = Record<string, unknown>;
export type ScrapeConfig = { job_name: string } & Json;

export interface PodMonitorObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: Json;
}

/** Where a pod's service account credentials are mounted (the kubelet scrape authenticates with them). */
export const SA_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The cAdvisor series kept (the rest of cAdvisor's output is thousands of series nobody reads). */
export const CADVISOR_KEEP = [
  'container_cpu_usage_seconds_total',
  'container_cpu_cfs_periods_total',
  'container_cpu_cfs_throttled_periods_total',
  'container_memory_working_set_bytes',
  'container_network_receive_bytes_total',
  'container_network_transmit_bytes_total',
] as const;

// The PodMonitor fields the platform uses; others are refused until translated.
const SUPPORTED_SPEC = new Set(['selector', 'podMetricsEndpoints']);
const SUPPORTED_ENDPOINT = new Set(['port', 'path', 'interval', 'honorLabels', 'relabelings']);
const RELABEL_KEYS: Readonly<Record<string, string>> = {
  sourceLabels: 'source_labels',
  separator: 'separator',
  targetLabel: 'target_label',
  regex: 'regex',
  modulus: 'modulus',
  replacement: 'replacement',
  action: 'action',
};

function relabel(where: string, rules: unknown): Json[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new Error(`${where}: must be a list`);
  return rules.map((r: Json, i) => {
    const out: Json = {};
    for (const [k, v] of Object.entries(r)) {
      const key = RELABEL_KEYS[k];
      if (!key) throw new Error(`${where}[${i}].${k} is not translated for the offline Prometheus (cdk8s/src/addons/scrape-config.ts): add it there`);
      // prometheus-operator accepts either case for the action; Prometheus wants it lower-case.
      out[key] = key === 'action' ? String(v).toLowerCase() : v;
    }
    return out;
  });
}

/**
 * The scrape configs prometheus-operator generates for one PodMonitor (one per endpoint), for the subset of
 * PodMonitor fields the platform uses; any other field is refused, so nothing is silently dropped offline.
 */
export function podMonitorScrapeConfigs(pm: PodMonitorObject): ScrapeConfig[] {
  const { name } = pm.metadata;
  const ns = pm.metadata.namespace;
  const where = `PodMonitor ${ns}/${name}`;
  if (pm.kind !== 'PodMonitor' || !ns) throw new Error(`${where}: expected a namespaced PodMonitor, got ${pm.kind}`);
  for (const k of Object.keys(pm.spec)) if (!SUPPORTED_SPEC.has(k)) throw new Error(`${where}: spec.${k} is not translated for the offline Prometheus (cdk8s/src/addons/scrape-config.ts): add it there`);
  const selector = (pm.spec.selector ?? {}) as { matchLabels?: Record<string, string>; [k: string]: unknown };
  if (Object.keys(selector).some((k) => k !== 'matchLabels')) throw new Error(`${where}: only selector.matchLabels is translated`);
  const endpoints = pm.spec.podMetricsEndpoints as Json[] | undefined;
  if (!endpoints?.length) throw new Error(`${where}: no podMetricsEndpoints`);

  return endpoints.map((ep, i) => {
    for (const k of Object.keys(ep)) if (!SUPPORTED_ENDPOINT.has(k)) throw new Error(`${where}: podMetricsEndpoints[${i}].${k} is not translated for the offline Prometheus (cdk8s/src/addons/scrape-config.ts): add it there`);
    if (typeof ep.port !== 'string') throw new Error(`${where}: podMetricsEndpoints[${i}] needs a named port`);
    const relabelings: Json[] = [
      { source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)', action: 'drop' },
      ...Object.entries(selector.matchLabels ?? {}).map(([k, v]) => ({
        source_labels: [podLabelMeta(k), podLabelMeta(k).replace('_pod_label_', '_pod_labelpresent_')],
        regex: `(${v});true`,
        action: 'keep',
      })),
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port, action: 'keep' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { target_label: 'job', replacement: `${ns}/${name}` },
      { target_label: 'endpoint', replacement: ep.port },
      ...relabel(`${where}: podMetricsEndpoints[${i}].relabelings`, ep.relabelings),
    ];
    return {
      job_name: `podMonitor/${ns}/${name}/${i}`,
      honor_labels: ep.honorLabels === true,
      ...(ep.interval ? { scrape_interval: ep.interval } : {}),
      metrics_path: (ep.path as string | undefined) ?? '/metrics',
      // A PodMonitor without a namespaceSelector selects pods in its own namespace.
      kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: [ns] } }],
      relabel_configs: relabelings,
    };
  });
}

export interface OfflinePrometheusConfig {
  /** The platform's PodMonitors (from the synthesized manifests). */
  readonly podMonitors: readonly PodMonitorObject[];
  /** Namespace and pod label of kube-state-metrics, and its metrics port name. */
  readonly kubeStateMetrics: { readonly namespace: string; readonly name: string; readonly port: string };
  /** @default `15s` */
  readonly interval?: string;
  /** Rule files, relative to prometheus.yml. @default `rules/*.yml` */
  readonly ruleFiles?: string;
  /** @default {@link SA_TOKEN_FILE} */
  readonly tokenFile?: string;
}

/** The namespaces whose pods Prometheus discovers (its Roles are exactly these). */
export function discoveredNamespaces(config: Record<string, unknown>): string[] {
  const jobs = (config.scrape_configs ?? []) as { kubernetes_sd_configs?: { role: string; namespaces?: { names: string[] } }[] }[];
  const names = jobs.flatMap((j) => (j.kubernetes_sd_configs ?? []).filter((sd) => sd.role === 'pod').flatMap((sd) => sd.namespaces?.names ?? []));
  return [...new Set(names)].sort();
}

/**
 * prometheus.yml: the platform (translated PodMonitors), kube-state-metrics, the kubelets' cAdvisor and
 * Prometheus itself. NATS is not scraped: nats-server serves JSON monitoring only (no Prometheus format),
 * and no panel or rule reads a NATS server metric (JetStream panels use the app's sagamesh_consumer_pending).
 */
export function offlinePrometheusConfig(c: OfflinePrometheusConfig): Record<string, unknown> {
  const interval = c.interval ?? '15s';
  const ksm = c.kubeStateMetrics;
  const jobs: ScrapeConfig[] = [
    ...c.podMonitors.flatMap(podMonitorScrapeConfigs),
    {
      job_name: 'kube-state-metrics',
      // Its series describe other objects: their namespace/pod labels must win over the target's.
      honor_labels: true,
      kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: [ksm.namespace] } }],
      relabel_configs: [
        { source_labels: [podLabelMeta('app.kubernetes.io/name')], regex: ksm.name, action: 'keep' },
        { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ksm.port, action: 'keep' },
      ],
    },
    {
      job_name: 'cadvisor',
      honor_labels: true,
      // cAdvisor stamps its samples; track their staleness so a deleted pod's series ends (as kube-prometheus does).
      honor_timestamps: true,
      track_timestamps_staleness: true,
      scheme: 'https',
      metrics_path: '/metrics/cadvisor',
      // The kubelet authorizes `get nodes/metrics` for this service account's token.
      authorization: { credentials_file: c.tokenFile ?? SA_TOKEN_FILE },
      // kind's kubelets serve self-signed certificates no cluster CA signs (metrics-server skips the same check).
      tls_config: { insecure_skip_verify: true },
      kubernetes_sd_configs: [{ role: 'node' }],
      relabel_configs: [{ source_labels: ['__meta_kubernetes_node_name'], target_label: 'node' }],
      metric_relabel_configs: [{ source_labels: ['__name__'], regex: `(${CADVISOR_KEEP.join('|')})`, action: 'keep' }],
    },
    { job_name: 'prometheus', static_configs: [{ targets: ['localhost:9090'] }] },
  ];
  const names = jobs.map((j) => j.job_name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`two scrape configs are named ${dup}`);
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [c.ruleFiles ?? 'rules/*.yml'],
    scrape_configs: jobs,
  };
}
