/**
 * metrics-server for the offline cluster (online, the chart in charts/values/metrics-server.yaml installs it):
 * the resource metrics API the HorizontalPodAutoscalers and `kubectl top` read.
 */
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type AddonResources, addonLabels, emptyDir, httpProbe, resources, restrictedContainer, restrictedPod } from './common.ts';

export interface MetricsServerProps {
  readonly image: string;
  /** @default kube-system (where the aggregated API's clients expect it) */
  readonly namespace?: string;
  /** @default {@link METRICS_SERVER_DEFAULTS}.resources */
  readonly resources?: AddonResources;
}

export const METRICS_SERVER_DEFAULTS = {
  namespace: 'kube-system',
  name: 'metrics-server',
  /** Listens above 1024: the container runs without capabilities. */
  securePort: 10250,
  resources: { cpuRequestMillis: 20, cpuLimitMillis: 200, memoryRequestMiB: 48, memoryLimitMiB: 128 },
  args: [
    '--cert-dir=/tmp',
    '--secure-port=10250',
    // kind's nodes are reached by their InternalIP (the Docker network); no DNS name of a node is needed.
    '--kubelet-preferred-address-types=InternalIP',
    '--kubelet-use-node-status-port',
    '--metric-resolution=15s',
    // kind's kubelets serve self-signed certificates that no cluster CA signs; a local cluster only.
    '--kubelet-insecure-tls',
  ],
} as const;

export class MetricsServer extends Construct {
  constructor(scope: Construct, id: string, props: MetricsServerProps) {
    super(scope, id);
    const ns = props.namespace ?? METRICS_SERVER_DEFAULTS.namespace;
    const name = METRICS_SERVER_DEFAULTS.name;
    const labels = addonLabels(name, 'metrics');
    const selector = { 'app.kubernetes.io/name': name };
    const subject = [{ kind: 'ServiceAccount', name, namespace: ns }];

    new kplus.k8s.KubeServiceAccount(this, 'sa', { metadata: { name, namespace: ns, labels } });
    // Least privilege: read pods and nodes, and the kubelets' resource metrics; nothing else.
    new kplus.k8s.KubeClusterRole(this, 'clusterrole', {
      metadata: { name: `system:${name}`, labels },
      rules: [
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    });
    new kplus.k8s.KubeClusterRoleBinding(this, 'clusterrolebinding', {
      metadata: { name: `system:${name}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `system:${name}` },
      subjects: subject,
    });
    // An aggregated API server authenticates its callers through the kube-apiserver (TokenReview,
    // SubjectAccessReview) and reads the request-header CA: the two built-in roles for exactly that.
    new kplus.k8s.KubeClusterRoleBinding(this, 'auth-delegator', {
      metadata: { name: `${name}:system:auth-delegator`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: subject,
    });
    new kplus.k8s.KubeRoleBinding(this, 'auth-reader', {
      metadata: { name: `${name}-auth-reader`, namespace: 'kube-system', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: subject,
    });

    new kplus.k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            priorityClassName: 'system-cluster-critical',
            securityContext: restrictedPod(),
            containers: [
              {
                name,
                image: props.image,
                // Built locally and side-loaded with `kind load`: there is no registry to pull from (a missing image fails at once).
                imagePullPolicy: 'Never',
                args: [...METRICS_SERVER_DEFAULTS.args],
                ports: [{ name: 'https', containerPort: METRICS_SERVER_DEFAULTS.securePort, protocol: 'TCP' }],
                readinessProbe: httpProbe('/readyz', 'https', { https: true, initialDelay: 20 }),
                livenessProbe: httpProbe('/livez', 'https', { https: true }),
                resources: resources(props.resources ?? METRICS_SERVER_DEFAULTS.resources),
                securityContext: restrictedContainer(),
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            volumes: [emptyDir('tmp', 16)],
          },
        },
      },
    });

    new kplus.k8s.KubeService(this, 'service', {
      metadata: { name, namespace: ns, labels },
      spec: { selector, ports: [{ name: 'https', port: 443, targetPort: kplus.k8s.IntOrString.fromString('https'), protocol: 'TCP' }] },
    });

    new kplus.k8s.KubeApiService(this, 'apiservice', {
      metadata: { name: 'v1beta1.metrics.k8s.io', labels },
      spec: {
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        service: { name, namespace: ns, port: 443 },
        // metrics-server serves a self-signed certificate it makes at start (--cert-dir): no CA to pin.
        insecureSkipTlsVerify: true,
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    });
  }
}
