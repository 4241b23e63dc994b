/**
 * kube-state-metrics for the offline cluster: the object state the "Autoscaling" dashboard reads (HPA
 * replicas and targets, Deployment availability, container requests). Only the resources listed below are
 * collected, and its ClusterRole can read exactly those (no Secrets, no ConfigMaps).
 */
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type AddonResources, addonLabels, httpProbe, resources, restrictedContainer, restrictedPod } from './common.ts';

export interface KubeStateMetricsProps {
  readonly image: string;
  readonly namespace: string;
  /** @default {@link KUBE_STATE_METRICS_DEFAULTS}.resources */
  readonly resources?: AddonResources;
}

/** The collected resources (`--resources`) with their API group: the RBAC rules are derived from this one table. */
export const KSM_RESOURCES: Readonly<Record<string, string>> = {
  pods: '',
  nodes: '',
  namespaces: '',
  persistentvolumeclaims: '',
  deployments: 'apps',
  replicasets: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  horizontalpodautoscalers: 'autoscaling',
  poddisruptionbudgets: 'policy',
  jobs: 'batch',
};

export const KUBE_STATE_METRICS_DEFAULTS = {
  name: 'kube-state-metrics',
  metricsPort: 8080,
  /** The named port Prometheus scrapes. */
  metricsPortName: 'http-metrics',
  telemetryPort: 8081,
  resources: { cpuRequestMillis: 20, cpuLimitMillis: 200, memoryRequestMiB: 48, memoryLimitMiB: 128 },
} as const;

export class KubeStateMetrics extends Construct {
  readonly labels: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: KubeStateMetricsProps) {
    super(scope, id);
    const d = KUBE_STATE_METRICS_DEFAULTS;
    const ns = props.namespace;
    const name = d.name;
    const labels = addonLabels(name, 'metrics');
    this.labels = labels;
    const selector = { 'app.kubernetes.io/name': name };

    new kplus.k8s.KubeServiceAccount(this, 'sa', { metadata: { name, namespace: ns, labels } });
    const byGroup = new Map<string, string[]>();
    for (const [resource, group] of Object.entries(KSM_RESOURCES)) byGroup.set(group, [...(byGroup.get(group) ?? []), resource]);
    new kplus.k8s.KubeClusterRole(this, 'clusterrole', {
      metadata: { name, labels },
      rules: [...byGroup].map(([group, res]) => ({ apiGroups: [group], resources: res, verbs: ['list', 'watch'] })),
    });
    new kplus.k8s.KubeClusterRoleBinding(this, 'clusterrolebinding', {
      metadata: { name, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    });

    new kplus.k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            securityContext: restrictedPod(),
            containers: [
              {
                name,
                image: props.image,
                imagePullPolicy: 'Never',
                args: [`--port=${d.metricsPort}`, `--telemetry-port=${d.telemetryPort}`, `--resources=${Object.keys(KSM_RESOURCES).join(',')}`],
                ports: [
                  { name: d.metricsPortName, containerPort: d.metricsPort, protocol: 'TCP' },
                  { name: 'telemetry', containerPort: d.telemetryPort, protocol: 'TCP' },
                ],
                // /livez asks the kube-apiserver; /readyz (telemetry port) is ready once metrics are collected.
                livenessProbe: httpProbe('/livez', d.metricsPortName),
                readinessProbe: httpProbe('/readyz', 'telemetry', { period: 5 }),
                resources: resources(props.resources ?? d.resources),
                securityContext: restrictedContainer(),
              },
            ],
          },
        },
      },
    });

    new kplus.k8s.KubeService(this, 'service', {
      metadata: { name, namespace: ns, labels },
      spec: {
        selector,
        ports: [
          { name: d.metricsPortName, port: d.metricsPort, targetPort: kplus.k8s.IntOrString.fromString(d.metricsPortName), protocol: 'TCP' },
          { name: 'telemetry', port: d.telemetryPort, targetPort: kplus.k8s.IntOrString.fromString('telemetry'), protocol: 'TCP' },
        ],
      },
    });
  }
}
