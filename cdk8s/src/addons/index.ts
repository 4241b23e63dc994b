/**
 * The add-ons of the offline cluster (`make up OFFLINE=1`), which has no Helm charts: metrics-server,
 * kube-state-metrics and an in-cluster Prometheus scraping the platform, all from images built locally
 * (scripts/cluster/addon-images.sh). Online, the charts in charts/values install their counterparts.
 * Synthesized by `cdk8s/src/main.ts --offline` into addons-offline.yaml, applied after the platform's namespace.
 */
import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { type ClusterRefs, DEFAULT_CLUSTER, PART_OF } from '../cluster.ts';
import { type RuleFile, ruleGroups } from '../platform.ts';
import type { AddonImages } from './images.ts';
import { KUBE_STATE_METRICS_DEFAULTS, KubeStateMetrics } from './kube-state-metrics.ts';
import { MetricsServer } from './metrics-server.ts';
import { OfflinePrometheus } from './prometheus.ts';
import { offlinePrometheusConfig, type PodMonitorObject } from './scrape-config.ts';

export * from './images.ts';
export * from './scrape-config.ts';
export { KSM_RESOURCES } from './kube-state-metrics.ts';

export interface OfflineAddonsProps {
  readonly images: AddonImages;
  /** Every object of the synthesized platform: its PodMonitors become Prometheus scrape configs. */
  readonly platformObjects: readonly Record<string, unknown>[];
  /** monitoring/rules/*.yml, loaded by the in-cluster Prometheus. */
  readonly ruleFiles: readonly RuleFile[];
  /** @default {@link DEFAULT_CLUSTER} */
  readonly cluster?: ClusterRefs;
}

/** The synthesized file, beside the platform's in cdk8s/dist. */
export const OFFLINE_ADDONS_FILE = 'addons-offline.yaml';

export class OfflineAddons extends Chart {
  /** prometheus.yml of the in-cluster Prometheus, as an object. */
  readonly prometheusConfig: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: OfflineAddonsProps) {
    super(scope, id);
    const cluster = props.cluster ?? DEFAULT_CLUSTER;
    const ns = cluster.monitoringNamespace;
    ruleGroups(props.ruleFiles); // refuses a malformed rule file or a duplicate group here, not in the pod's log

    new kplus.k8s.KubeNamespace(this, 'monitoring', {
      metadata: {
        name: ns,
        labels: {
          'app.kubernetes.io/part-of': PART_OF,
          // Every add-on pod here meets `restricted`, so it is enforced (nothing is injected offline).
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    });
    new MetricsServer(this, 'metrics-server', { image: props.images.metricsServer });
    new KubeStateMetrics(this, 'kube-state-metrics', { image: props.images.kubeStateMetrics, namespace: ns });

    const podMonitors = props.platformObjects.filter((o) => o.kind === 'PodMonitor') as unknown as PodMonitorObject[];
    this.prometheusConfig = offlinePrometheusConfig({
      podMonitors,
      kubeStateMetrics: { namespace: ns, name: KUBE_STATE_METRICS_DEFAULTS.name, port: KUBE_STATE_METRICS_DEFAULTS.metricsPortName },
    });
    new OfflinePrometheus(this, 'prometheus', { image: props.images.prometheus, config: this.prometheusConfig, ruleFiles: props.ruleFiles, cluster });
  }
}

/** Synthesizes the add-ons into one file (pure: props in, objects out). */
export function synthOfflineAddons(props: OfflineAddonsProps): { file: string; objects: Record<string, unknown>[] } {
  const chart = new OfflineAddons(new App({ outdir: '/nonexistent' }), 'addons-offline', props);
  return { file: OFFLINE_ADDONS_FILE, objects: chart.toJson() };
}
