import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { type ClusterRefs, LinkerdPorts, NAME_LABEL, type WorkloadAccess } from './cluster.ts';

type k8sNetworkPolicyPeer = kplus.k8s.NetworkPolicyPeer;
type k8sNetworkPolicyPort = kplus.k8s.NetworkPolicyPort;

/** Extra egress to addresses outside the pod network (e.g. the kube-apiserver). */
export interface EgressRule {
  readonly cidr: string;
  readonly ports: readonly number[];
  /** Why this hole exists (kept as an annotation on the policy). */
  readonly reason: string;
}

/** `callers` are the workloads' names (their NAME_LABEL). */
export interface WorkloadNetworkProps extends WorkloadAccess {
  readonly calls: readonly { readonly name: string; readonly port: number }[];
  readonly egress: readonly EgressRule[];
}

const tcp = (port: number): k8sNetworkPolicyPort => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) });
const nsSelector = (ns: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': ns } });

/**
 * The namespace's baseline: deny every ingress and egress that no other policy allows. Each workload's
 * own policy (below) then opens exactly the paths the architecture uses.
 */
export function defaultDenyPolicy(scope: Construct, id: string, namespace: string): kplus.k8s.KubeNetworkPolicy {
  return new kplus.k8s.KubeNetworkPolicy(scope, id, {
    metadata: { name: 'default-deny-all', namespace },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
  });
}

/** What every NATS client of the platform needs out: DNS, and the NATS client port. */
export function busClientEgress(c: ClusterRefs): kplus.k8s.NetworkPolicyEgressRule[] {
  return [
    {
      to: [{ namespaceSelector: nsSelector('kube-system'), podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [
        { protocol: 'UDP', port: kplus.k8s.IntOrString.fromNumber(53) },
        { protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(53) },
      ],
    },
    { to: [{ namespaceSelector: nsSelector(c.natsNamespace) }], ports: [tcp(c.natsPort)] },
  ];
}

/**
 * One workload's allowed paths. Meshed traffic between pods arrives on the Linkerd proxy's inbound port
 * (4143) rather than the app port, so both are opened wherever a meshed peer talks to a meshed pod.
 *
 * in:  Prometheus → app port (/metrics), proxy admin 4191 (proxy metrics), 4143 (Prometheus is meshed);
 *      callers → app port + 4143; a public workload (the gateway) ← anywhere on the app port (NodePort).
 * out: DNS; NATS (4222, bypasses the proxy); the Linkerd control plane (identity, destination, policy);
 *      the services it calls (their port + 4143); extra CIDR rules (the operator → kube-apiserver).
 */
export function workloadNetworkPolicy(scope: Construct, id: string, p: WorkloadNetworkProps): kplus.k8s.KubeNetworkPolicy {
  const c = p.cluster;
  const prometheus: k8sNetworkPolicyPeer = { namespaceSelector: nsSelector(c.monitoringNamespace), podSelector: { matchLabels: { ...c.prometheusPodLabels } } };
  const ingress: kplus.k8s.NetworkPolicyIngressRule[] = [
    { from: [prometheus], ports: [tcp(p.port), tcp(LinkerdPorts.admin), tcp(LinkerdPorts.inbound)] },
  ];
  if (p.callers.length > 0) {
    ingress.push({
      from: [{ podSelector: { matchExpressions: [{ key: NAME_LABEL, operator: 'In', values: [...p.callers].sort() }] } }],
      ports: [tcp(p.port), tcp(LinkerdPorts.inbound)],
    });
  }
  if (p.public) ingress.push({ ports: [tcp(p.port)] });

  const egress: kplus.k8s.NetworkPolicyEgressRule[] = [...busClientEgress(c), { to: [{ namespaceSelector: nsSelector(c.linkerdNamespace) }] }];
  for (const call of p.calls) {
    egress.push({ to: [{ podSelector: { matchLabels: { [NAME_LABEL]: call.name } } }], ports: [tcp(call.port), tcp(LinkerdPorts.inbound)] });
  }
  for (const e of p.egress) egress.push({ to: [{ ipBlock: { cidr: e.cidr } }], ports: e.ports.map(tcp) });

  const annotations: Record<string, string> = {};
  if (p.egress.length > 0) annotations['sagamesh.io/egress-reasons'] = p.egress.map((e) => `${e.cidr}: ${e.reason}`).join('; ');
  return new kplus.k8s.KubeNetworkPolicy(scope, id, {
    metadata: { name: p.name, namespace: c.namespace, labels: { ...p.labels }, ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec: { podSelector: { matchLabels: { [NAME_LABEL]: p.name } }, policyTypes: ['Ingress', 'Egress'], ingress, egress },
  });
}
