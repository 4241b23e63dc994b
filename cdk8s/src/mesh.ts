import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';
import { NAME_LABEL, type WorkloadAccess } from './cluster.ts';

/** Linkerd policy API versions (linkerd-crds chart, see charts/versions.env). */
export const LinkerdApi = {
  server: 'policy.linkerd.io/v1beta3',
  httpRoute: 'policy.linkerd.io/v1beta3',
  authorizationPolicy: 'policy.linkerd.io/v1alpha1',
  meshTlsAuthentication: 'policy.linkerd.io/v1alpha1',
  networkAuthentication: 'policy.linkerd.io/v1alpha1',
} as const;

/** `callers` are service accounts, allowed over mTLS. */
export interface MeshPolicyProps extends WorkloadAccess {
  readonly routes?: { readonly requestTimeout: string; readonly readRetries: number; readonly readRetryTimeout: string };
}

/**
 * Linkerd authorization for one workload's port: a Server (once it exists, only authorized clients get in;
 * kubelet probes stay allowed because the Server has no inbound routes), a MeshTLSAuthentication naming the
 * callers' and Prometheus' service accounts, and the AuthorizationPolicy binding them. With `routes`,
 * HTTPRoutes on the Service set what meshed clients do: GETs retried on 5xx, every request timed out.
 */
export function meshPolicy(scope: Construct, id: string, p: MeshPolicyProps): void {
  const ns = p.cluster.namespace;
  const meta = (name: string, annotations?: Record<string, string>) => ({ name, namespace: ns, labels: { ...p.labels }, ...(annotations ? { annotations } : {}) });
  const server = `${p.name}-http`;
  /** An AuthorizationPolicy that lets into the Server the clients of one authentication resource. */
  const authorize = (objectId: string, name: string, kind: 'MeshTLSAuthentication' | 'NetworkAuthentication', authentication: string) =>
    new ApiObject(scope, objectId, {
      apiVersion: LinkerdApi.authorizationPolicy,
      kind: 'AuthorizationPolicy',
      metadata: meta(name),
      spec: {
        targetRef: { group: 'policy.linkerd.io', kind: 'Server', name: server },
        requiredAuthenticationRefs: [{ group: 'policy.linkerd.io', kind, name: authentication }],
      },
    });
  new ApiObject(scope, `${id}-server`, {
    apiVersion: LinkerdApi.server,
    kind: 'Server',
    metadata: meta(server),
    spec: { podSelector: { matchLabels: { [NAME_LABEL]: p.name } }, port: 'http', proxyProtocol: 'HTTP/1' },
  });
  const identities = [
    ...[...p.callers].sort().map((sa) => ({ kind: 'ServiceAccount', name: sa })),
    { kind: 'ServiceAccount', name: p.cluster.prometheusServiceAccount, namespace: p.cluster.monitoringNamespace },
  ];
  new ApiObject(scope, `${id}-mtls`, {
    apiVersion: LinkerdApi.meshTlsAuthentication,
    kind: 'MeshTLSAuthentication',
    metadata: meta(`${p.name}-callers`),
    spec: { identityRefs: identities },
  });
  authorize(`${id}-authz`, `${p.name}-callers`, 'MeshTLSAuthentication', `${p.name}-callers`);
  if (p.public) {
    new ApiObject(scope, `${id}-anywhere`, {
      apiVersion: LinkerdApi.networkAuthentication,
      kind: 'NetworkAuthentication',
      metadata: meta(`${p.name}-anywhere`),
      spec: { networks: [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }] },
    });
    authorize(`${id}-public`, `${p.name}-public`, 'NetworkAuthentication', `${p.name}-anywhere`);
  }
  if (p.routes) {
    const parentRefs = [{ group: 'core', kind: 'Service', name: p.name, port: p.port }];
    const all = { path: { type: 'PathPrefix', value: '/' } };
    // Idempotent reads: retried on 5xx, each try bounded, the whole request bounded.
    new ApiObject(scope, `${id}-reads`, {
      apiVersion: LinkerdApi.httpRoute,
      kind: 'HTTPRoute',
      metadata: meta(`${p.name}-reads`, {
        'retry.linkerd.io/http': '5xx',
        'retry.linkerd.io/limit': String(p.routes.readRetries),
        'retry.linkerd.io/timeout': p.routes.readRetryTimeout,
        'timeout.linkerd.io/request': p.routes.requestTimeout,
      }),
      spec: { parentRefs, rules: [{ matches: [{ ...all, method: 'GET' }, { ...all, method: 'HEAD' }] }] },
    });
    // Everything else (writes): bounded, never retried by the mesh — the caller owns idempotency keys.
    new ApiObject(scope, `${id}-writes`, {
      apiVersion: LinkerdApi.httpRoute,
      kind: 'HTTPRoute',
      metadata: meta(`${p.name}-writes`, { 'timeout.linkerd.io/request': p.routes.requestTimeout }),
      spec: { parentRefs, rules: [{ matches: [all] }] },
    });
  }
}
