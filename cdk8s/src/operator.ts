import { Ports, SAGAMESH_GROUP, SagaCrdNames } from '@sagamesh/contracts';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type ClusterRefs, DEFAULT_CLUSTER } from './cluster.ts';
import type { EgressRule } from './network.ts';
import { SagameshService, type SagameshServiceProps } from './service.ts';

export interface SagaOperatorProps {
  /** @default `dev` */
  readonly imageTag?: string;
  /** @default `IfNotPresent` (see {@link SagameshServiceProps}.imagePullPolicy) */
  readonly imagePullPolicy?: SagameshServiceProps['imagePullPolicy'];
  /** Extra pod-template annotations. @default {} */
  readonly podAnnotations?: Readonly<Record<string, string>>;
  /** Active + standby; leader election keeps one reconciling. @default 2 */
  readonly replicas?: number;
  /** The coordination.k8s.io Lease the replicas compete for (in the operator's namespace). @default `sagamesh-operator` */
  readonly leaseName?: string;
  /** Plain environment for the operator process. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** Environment read from Secrets (its NATS password). @default {} */
  readonly secretEnv?: SagameshServiceProps['secretEnv'];
  /** ConfigMaps whose keys become environment variables (the NATS connection). @default [] */
  readonly envFromConfigMaps?: readonly string[];
  /** Where the kube-apiserver answers (kind: the control-plane node, 6443; the Service VIP, 443). @default any address, ports 443 and 6443 */
  readonly apiServerEgress?: EgressRule;
  /** @default {@link DEFAULT_CLUSTER} */
  readonly cluster?: ClusterRefs;
}

export const OPERATOR_DEFAULTS = {
  replicas: 2,
  leaseName: 'sagamesh-operator',
  apiServerEgress: { cidr: '0.0.0.0/0', ports: [443, 6443], reason: 'kube-apiserver (watch Sagas/SagaDefinitions, status, events, leader lease)' },
} as const satisfies { replicas: number; leaseName: string; apiServerEgress: EgressRule };

/**
 * The saga operator: a SagameshService (hardened, meshed, no HPA: leader election makes extra replicas
 * standbys, not capacity) plus least-privilege RBAC — cluster-wide on the sagamesh.io resources (Sagas
 * live in any namespace) and Events, namespaced on its one Lease.
 */
export class SagaOperator extends Construct {
  readonly workload: SagameshService;

  constructor(scope: Construct, id: string, props: SagaOperatorProps = {}) {
    super(scope, id);
    const cluster = props.cluster ?? DEFAULT_CLUSTER;
    const leaseName = props.leaseName ?? OPERATOR_DEFAULTS.leaseName;
    this.workload = new SagameshService(this, 'workload', {
      name: 'operator',
      component: 'operator',
      image: 'sagamesh/operator',
      port: Ports.operator,
      imageTag: props.imageTag,
      imagePullPolicy: props.imagePullPolicy,
      podAnnotations: props.podAnnotations,
      autoscaling: false,
      replicas: props.replicas ?? OPERATOR_DEFAULTS.replicas,
      // No Service sends the operator requests: nothing to drain before the lease is released.
      shutdownDelaySeconds: 0,
      automountServiceAccountToken: true,
      // The operator's config (operator/src/config.ts): its Lease in its own namespace, its pod name as identity.
      env: { LEASE_NAME: leaseName, LEASE_NAMESPACE: cluster.namespace, ...(props.env ?? {}) },
      fieldRefEnv: { IDENTITY: 'metadata.name' },
      ...(props.secretEnv ? { secretEnv: props.secretEnv } : {}),
      envFromConfigMaps: props.envFromConfigMaps,
      egress: [props.apiServerEgress ?? OPERATOR_DEFAULTS.apiServerEgress],
      cluster,
    });
    const labels = this.workload.labels;
    const name = 'sagamesh-operator';
    const plurals = [SagaCrdNames.saga.plural, SagaCrdNames.sagaDefinition.plural];

    const clusterRole = new kplus.k8s.KubeClusterRole(this, 'clusterrole', {
      metadata: { name, labels: { ...labels } },
      rules: [
        { apiGroups: [SAGAMESH_GROUP], resources: plurals, verbs: ['get', 'list', 'watch', 'update', 'patch'] },
        { apiGroups: [SAGAMESH_GROUP], resources: plurals.map((r) => `${r}/status`), verbs: ['get', 'update', 'patch'] },
        { apiGroups: [SAGAMESH_GROUP], resources: plurals.map((r) => `${r}/finalizers`), verbs: ['update'] },
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    });
    new kplus.k8s.KubeClusterRoleBinding(this, 'clusterrolebinding', {
      metadata: { name, labels: { ...labels } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.name },
      subjects: [{ kind: 'ServiceAccount', name: this.workload.serviceAccount.name, namespace: cluster.namespace }],
    });
    const role = new kplus.k8s.KubeRole(this, 'role', {
      metadata: { name, namespace: cluster.namespace, labels: { ...labels } },
      rules: [
        // `create` cannot be limited to a resourceName; everything else is limited to the operator's own Lease.
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [leaseName], verbs: ['get', 'watch', 'update', 'patch'] },
      ],
    });
    new kplus.k8s.KubeRoleBinding(this, 'rolebinding', {
      metadata: { name, namespace: cluster.namespace, labels: { ...labels } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: this.workload.serviceAccount.name, namespace: cluster.namespace }],
    });
  }
}
