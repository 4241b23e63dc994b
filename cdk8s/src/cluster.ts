/**
 * Where the things the app talks to live in the cluster that `make up` builds (the NATS construct,
 * charts/values/*, the offline add-ons). One place, so the NetworkPolicies, the Linkerd policy and the charts agree.
 */
export interface ClusterRefs {
  /** Namespace of the app and the operator (meshed). */
  readonly namespace: string;
  /** Namespace, client Service and client port of the platform's NATS (the NatsCluster construct). */
  readonly natsNamespace: string;
  readonly natsService: string;
  readonly natsPort: number;
  /** Namespace of kube-prometheus-stack; its Prometheus runs as `prometheusServiceAccount` with `prometheusPodLabels`. */
  readonly monitoringNamespace: string;
  readonly prometheusServiceAccount: string;
  readonly prometheusPodLabels: Readonly<Record<string, string>>;
  /** Namespace of the Linkerd control plane (identity, destination, policy). */
  readonly linkerdNamespace: string;
}

/** A workload as its access policies see it: the NetworkPolicy (network.ts) and the Linkerd authorization (mesh.ts). */
export interface WorkloadAccess {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly port: number;
  readonly cluster: ClusterRefs;
  /** Workloads (same namespace; their service accounts, for the mesh) allowed to call the port. Prometheus always may. */
  readonly callers: readonly string[];
  /** Also allow unauthenticated clients from any network (the gateway behind its NodePort). */
  readonly public: boolean;
}

export const DEFAULT_CLUSTER: ClusterRefs = {
  namespace: 'sagamesh',
  natsNamespace: 'nats',
  natsService: 'nats',
  natsPort: 4222,
  monitoringNamespace: 'monitoring',
  prometheusServiceAccount: 'prometheus',
  prometheusPodLabels: { 'app.kubernetes.io/name': 'prometheus' },
  linkerdNamespace: 'linkerd',
};

/** Linkerd proxy ports (linkerd-control-plane `proxy.ports`): traffic between meshed pods enters on `inbound`. */
export const LinkerdPorts = { inbound: 4143, outbound: 4140, admin: 4191, control: 4190 } as const;

export const PART_OF = 'sagamesh';

/** The label every selector uses: one workload = one name. */
export const NAME_LABEL = 'app.kubernetes.io/name';
