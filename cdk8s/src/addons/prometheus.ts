/**
 * The offline cluster's Prometheus (the project's pinned build): prometheus.yml from
 * {@link offlinePrometheusConfig}, monitoring/rules loaded, an emptyDir TSDB, read access only to what it
 * discovers. Its name, service account and pod labels are the ones the platform's NetworkPolicies let in
 * (ClusterRefs.prometheus*), so the same policies hold on both paths.
 */
import { createHash } from 'node:crypto';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import type { ClusterRefs } from '../cluster.ts';
import type { RuleFile } from '../platform.ts';
import { type AddonResources, addonLabels, emptyDir, httpProbe, resources, restrictedContainer, restrictedPod } from './common.ts';
import { discoveredNamespaces } from './scrape-config.ts';

export interface OfflinePrometheusProps {
  readonly image: string;
  /** prometheus.yml as an object ({@link offlinePrometheusConfig}); its rule_files point at `rules/`. */
  readonly config: Record<string, unknown>;
  /** monitoring/rules/*.yml, mounted beside prometheus.yml under `rules/`. */
  readonly ruleFiles: readonly RuleFile[];
  readonly cluster: ClusterRefs;
  /** @default {@link PROMETHEUS_DEFAULTS}.resources */
  readonly resources?: AddonResources;
}

export const PROMETHEUS_DEFAULTS = {
  port: 9090,
  configDir: '/etc/prometheus',
  dataDir: '/prometheus',
  /** A demo cluster: a few hours of data, and the emptyDir caps the disk. */
  retention: '6h',
  retentionSize: '384MB',
  dataSizeMiB: 512,
  resources: { cpuRequestMillis: 50, cpuLimitMillis: 500, memoryRequestMiB: 128, memoryLimitMiB: 512 },
} as const;

const RULE_FILE = /^[a-zA-Z0-9][-a-zA-Z0-9_.]*\.yml$/;

export class OfflinePrometheus extends Construct {
  constructor(scope: Construct, id: string, props: OfflinePrometheusProps) {
    super(scope, id);
    const d = PROMETHEUS_DEFAULTS;
    const c = props.cluster;
    const ns = c.monitoringNamespace;
    const name = c.prometheusServiceAccount;
    const labels = { ...addonLabels(name, 'monitoring'), ...c.prometheusPodLabels };
    const selector = { ...c.prometheusPodLabels };
    const subject = [{ kind: 'ServiceAccount', name, namespace: ns }];
    for (const f of props.ruleFiles) if (!RULE_FILE.test(f.file)) throw new Error(`monitoring/rules/${f.file}: a rule file name must be a ConfigMap key ending in .yml`);

    new kplus.k8s.KubeServiceAccount(this, 'sa', { metadata: { name, namespace: ns, labels } });
    // Cluster-wide only what the kubelet (cAdvisor) scrape needs: the node list and nodes/metrics.
    new kplus.k8s.KubeClusterRole(this, 'clusterrole', {
      metadata: { name: `sagamesh-${name}`, labels },
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
      ],
    });
    new kplus.k8s.KubeClusterRoleBinding(this, 'clusterrolebinding', {
      metadata: { name: `sagamesh-${name}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `sagamesh-${name}` },
      subjects: subject,
    });
    // Pod discovery only in the namespaces the config scrapes.
    for (const target of discoveredNamespaces(props.config)) {
      new kplus.k8s.KubeRole(this, `role-${target}`, {
        metadata: { name: `sagamesh-${name}`, namespace: target, labels },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
      });
      new kplus.k8s.KubeRoleBinding(this, `rolebinding-${target}`, {
        metadata: { name: `sagamesh-${name}`, namespace: target, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `sagamesh-${name}` },
        subjects: subject,
      });
    }

    const configYaml = stringify(props.config);
    new kplus.k8s.KubeConfigMap(this, 'config', { metadata: { name: `${name}-config`, namespace: ns, labels }, data: { 'prometheus.yml': configYaml } });
    new kplus.k8s.KubeConfigMap(this, 'rules', { metadata: { name: `${name}-rules`, namespace: ns, labels }, data: Object.fromEntries(props.ruleFiles.map((f) => [f.file, f.yaml])) });
    // No reloader sidecar: a changed config or rule rolls the pod instead (its TSDB is an emptyDir anyway).
    const checksum = createHash('sha256').update(configYaml).update(JSON.stringify(props.ruleFiles)).digest('hex').slice(0, 16);

    new kplus.k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        // One TSDB on an emptyDir: never two pods at once.
        strategy: { type: 'Recreate' },
        template: {
          metadata: { labels, annotations: { 'sagamesh.io/config-checksum': checksum } },
          spec: {
            serviceAccountName: name,
            securityContext: restrictedPod(),
            terminationGracePeriodSeconds: 30,
            containers: [
              {
                name: 'prometheus',
                image: props.image,
                imagePullPolicy: 'Never',
                args: [
                  `--config.file=${d.configDir}/prometheus.yml`,
                  `--storage.tsdb.path=${d.dataDir}`,
                  `--storage.tsdb.retention.time=${d.retention}`,
                  `--storage.tsdb.retention.size=${d.retentionSize}`,
                  `--web.listen-address=:${d.port}`,
                ],
                ports: [{ name: 'web', containerPort: d.port, protocol: 'TCP' }],
                readinessProbe: httpProbe('/-/ready', 'web', { period: 5 }),
                livenessProbe: httpProbe('/-/healthy', 'web', { initialDelay: 10 }),
                resources: resources(props.resources ?? d.resources),
                securityContext: restrictedContainer(),
                volumeMounts: [
                  { name: 'config', mountPath: d.configDir, readOnly: true },
                  { name: 'data', mountPath: d.dataDir },
                ],
              },
            ],
            volumes: [
              {
                name: 'config',
                projected: {
                  sources: [
                    { configMap: { name: `${name}-config` } },
                    { configMap: { name: `${name}-rules`, items: props.ruleFiles.map((f) => ({ key: f.file, path: `rules/${f.file}` })) } },
                  ],
                },
              },
              emptyDir('data', d.dataSizeMiB),
            ],
          },
        },
      },
    });

    new kplus.k8s.KubeService(this, 'service', {
      metadata: { name, namespace: ns, labels },
      spec: { selector, ports: [{ name: 'web', port: d.port, targetPort: kplus.k8s.IntOrString.fromString('web'), protocol: 'TCP' }] },
    });
  }
}
