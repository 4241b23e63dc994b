import { createHash } from 'node:crypto';
import { NatsIdentities, natsPermissions, Ports, ServiceNames, type NatsIdentity, type ServiceName } from '@sagamesh/contracts';
import { ApiObject, App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { parse as parseYaml } from 'yaml';
import { type ClusterRefs, DEFAULT_CLUSTER, PART_OF } from './cluster.ts';
import { NATS_DEFAULTS, NatsCluster, type NatsAccount } from './nats.ts';
import { defaultDenyPolicy } from './network.ts';
import { SagaOperator } from './operator.ts';
import { NatsProvisionJob, PROVISION_JOB } from './provision.ts';
import { SagameshService, type SagameshServiceProps } from './service.ts';

export interface Dashboard {
  /** File name without `.json`, e.g. `golden-signals`. */
  readonly name: string;
  /** The dashboard JSON, as written in dashboards/<name>.json. */
  readonly json: string;
}

/** One Prometheus rule file (monitoring/rules/*.yml), as written. */
export interface RuleFile {
  /** File name, e.g. `sagamesh.yml`. */
  readonly file: string;
  readonly yaml: string;
}

export interface PlatformConfig {
  /** Tag of every `sagamesh/<service>` image. @default `dev` */
  readonly imageTag: string;
  /** Pull policy of the `sagamesh/<service>` images: `Never` where nothing can be pulled (offline; a missing image fails fast). @default `IfNotPresent` */
  readonly imagePullPolicy: 'IfNotPresent' | 'Never';
  /**
   * Fault injection (`/admin/faults`, a Saga's `spec.faults`), passed to every workload as FAULT_INJECTION:
   * on for a local demo cluster (`make up` synthesizes with --faults), off for any other deployment. @default false
   */
  readonly faultInjection: boolean;
  /** The platform's NATS JetStream cluster (see {@link NatsCluster}). */
  readonly nats: {
    readonly image: string;
    readonly imagePullPolicy: 'IfNotPresent' | 'Never';
    readonly replicas: number;
    readonly tolerations: readonly kplus.k8s.Toleration[];
  };
  /**
   * The Secret `make up` creates (never committed), in the NATS namespace and in the app namespace alike, with one
   * password per identity on the bus, keyed by the identity (`gateway`, …, `operator`, `admin`). @default `nats-users`
   */
  readonly natsUsersSecret: string;
  /** NodePort of the gateway (kind-config.yaml maps it to localhost:8080). @default 30080 */
  readonly gatewayNodePort: number;
  /**
   * The Secret `make up` creates with the gateway's API keys (never committed): `key` holds the customer keys
   * (API_KEYS), `adminKey` the admin keys (ADMIN_API_KEYS, for /admin/* and every order).
   */
  readonly apiKeySecret: { readonly name: string; readonly key: string; readonly adminKey: string };
  /** The CRDs (from libs/contracts' generator: one source of truth). */
  readonly crds: readonly Record<string, unknown>[];
  /** Grafana dashboards (dashboards/*.json), shipped as ConfigMaps for the Grafana sidecar. */
  readonly dashboards: readonly Dashboard[];
  /** Recording and alerting rules (monitoring/rules/*.yml), shipped as one PrometheusRule. @default none: no PrometheusRule */
  readonly ruleFiles?: readonly RuleFile[];
  readonly cluster: ClusterRefs;
}

/** kind-config.yaml has one control plane and two workers: three NATS servers get three nodes only if the control plane takes one. */
export const KIND_CONTROL_PLANE_TOLERATION: kplus.k8s.Toleration = { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' };

export const PLATFORM_DEFAULTS: Omit<PlatformConfig, 'crds' | 'dashboards' | 'ruleFiles'> = {
  imageTag: 'dev',
  imagePullPolicy: 'IfNotPresent',
  faultInjection: false,
  nats: { image: NATS_DEFAULTS.image, imagePullPolicy: 'IfNotPresent', replicas: NATS_DEFAULTS.replicas, tolerations: [KIND_CONTROL_PLANE_TOLERATION] },
  natsUsersSecret: 'nats-users',
  gatewayNodePort: 30080,
  apiKeySecret: { name: 'sagamesh-gateway', key: 'api-keys', adminKey: 'admin-api-keys' },
  cluster: DEFAULT_CLUSTER,
};

/** The ConfigMap every workload reads its platform settings from (NATS_URL, JETSTREAM_REPLICAS, JETSTREAM_STORE_MIB). */
export const PLATFORM_CONFIGMAP = 'sagamesh-platform';

/** The workloads in the app namespace: every contracts service and the operator (NATS admits only these). */
export const WORKLOADS: readonly string[] = [...ServiceNames, 'operator'];

/**
 * The bus's one account: a user per identity, each with the permissions @sagamesh/contracts derives for it
 * (natsPermissions: the same generator writes make dev's and the tests' server config), its password from the Secret.
 */
export function natsAccount(usersSecret: string): NatsAccount {
  return {
    name: 'SAGAMESH',
    jetstream: true,
    users: NatsIdentities.map((identity) => {
      const p = natsPermissions(identity);
      const rule = (r: { allow: readonly string[]; deny: readonly string[] }) => ({ allow: r.allow, ...(r.deny.length ? { deny: r.deny } : {}) });
      return {
        user: identity,
        password: { secret: usersSecret, key: identity },
        permissions: { publish: rule(p.publish), subscribe: rule(p.subscribe), allowResponses: p.allowResponses },
      };
    }),
  };
}

/** A process's identity on the bus: its user and, from the Secret, its password. */
function natsIdentityEnv(identity: NatsIdentity, usersSecret: string) {
  return { env: { NATS_USER: identity }, secretEnv: { NATS_PASSWORD: { secret: usersSecret, key: identity } } };
}

/** The PrometheusRule carrying monitoring/rules/*.yml. */
export const PROMETHEUS_RULE = 'sagamesh';

/**
 * Who talks to whom over HTTP (everything else goes through NATS). One table, from which the
 * NetworkPolicies, the Linkerd authorizations and the gateway's upstream URL all follow.
 */
export function serviceTopology(config: PlatformConfig): Record<ServiceName, Omit<SagameshServiceProps, 'cluster' | 'imageTag' | 'imagePullPolicy' | 'podAnnotations'>> {
  const ns = config.cluster.namespace;
  const base = (name: ServiceName) => ({ name, port: Ports[name], envFromConfigMaps: [PLATFORM_CONFIGMAP] });
  // Only the services that apply or administer faults know the switch (the env check refuses it anywhere else).
  const faults = { FAULT_INJECTION: String(config.faultInjection) };
  // The front of the request path scales first under `make load`: a lower target than the default 70 %
  // so a demo rate on a 2-core machine (where every pod shares the same two cores) crosses it. Measured on the kind
  // cluster: gateway ~40 % and orders ~44 % of their 50m at 45 orders/s, and from ~60/s the engine falls behind.
  const demoScaling = { minReplicas: 2, maxReplicas: 6, targetCpuUtilization: 30, scaleDownStabilizationSeconds: 60 };
  return {
    gateway: {
      ...base('gateway'),
      nodePort: config.gatewayNodePort,
      calls: [{ name: 'orders', port: Ports.orders }],
      env: { ORDERS_URL: `http://orders.${ns}.svc.cluster.local:${Ports.orders}`, ...faults },
      secretEnv: {
        API_KEYS: { secret: config.apiKeySecret.name, key: config.apiKeySecret.key },
        ADMIN_API_KEYS: { secret: config.apiKeySecret.name, key: config.apiKeySecret.adminKey },
      },
      autoscaling: demoScaling,
    },
    orders: { ...base('orders'), callers: ['gateway'], autoscaling: demoScaling },
    orchestrator: {
      ...base('orchestrator'),
      // Every replica re-publishes the outbox of a run untouched for SWEEP_GRACE_MS that it has not published itself
      // (crash recovery). Under load a step can take seconds, and with N replicas that is N-1 extra publishes per step:
      // measured on the 2-core kind cluster, 5 replicas at the 3 s default fed on themselves until sagas stalled. A
      // longer grace and at most 3 replicas keep recovery and stop the storm.
      env: { SWEEP_GRACE_MS: '15000' },
      autoscaling: { minReplicas: 2, maxReplicas: 3, targetCpuUtilization: 70, scaleDownStabilizationSeconds: 60 },
    },
    inventory: {
      ...base('inventory'),
      env: faults,
      // One writer: the store appends to one stream behind an expected last sequence, so a second replica contends
      // instead of adding capacity (measured on the kind cluster under load: 2 or 4 replicas livelocked on chain
      // breaks and stopped draining their commands; 1 drained ~400 commands/s). A deleted or drained pod is replaced
      // in seconds and its commands wait in JetStream meanwhile.
      autoscaling: false,
      replicas: 1,
    },
    payments: { ...base('payments'), env: faults },
    shipping: { ...base('shipping'), env: faults },
    notifications: base('notifications'),
  };
}

export interface SynthFile {
  /** File name under cdk8s/dist, applied in this order. */
  readonly file: string;
  readonly objects: readonly Record<string, unknown>[];
  /** CustomResourceDefinitions that must exist before this file can be applied (none for built-in kinds). */
  readonly requires: readonly string[];
}

/** API groups Kubernetes serves itself: their objects go to 02-platform.yaml, which applies on any cluster. */
const BUILTIN_GROUPS = new Set(['', 'apps', 'autoscaling', 'batch', 'policy', 'networking.k8s.io', 'rbac.authorization.k8s.io']);

/**
 * Kinds that exist only once their CRDs are installed (Linkerd's policy, prometheus-operator's monitors):
 * one file per group, with the CRD of each kind, so `make up` applies a file only where its CRDs exist.
 */
export const CRD_BACKED_FILES: Readonly<Record<string, { readonly file: string; readonly crds: Readonly<Record<string, string>> }>> = {
  'policy.linkerd.io': {
    file: '03-linkerd.yaml',
    crds: {
      Server: 'servers.policy.linkerd.io',
      AuthorizationPolicy: 'authorizationpolicies.policy.linkerd.io',
      MeshTLSAuthentication: 'meshtlsauthentications.policy.linkerd.io',
      NetworkAuthentication: 'networkauthentications.policy.linkerd.io',
      HTTPRoute: 'httproutes.policy.linkerd.io',
    },
  },
  'monitoring.coreos.com': {
    file: '04-prometheus-operator.yaml',
    crds: { PodMonitor: 'podmonitors.monitoring.coreos.com', PrometheusRule: 'prometheusrules.monitoring.coreos.com' },
  },
};

/** Splits the platform's objects: built-in kinds into 02-platform.yaml, CRD-backed kinds into their group's file. */
export function splitByApi(objects: readonly Record<string, unknown>[]): SynthFile[] {
  const platform: Record<string, unknown>[] = [];
  const byGroup = new Map<string, Record<string, unknown>[]>();
  for (const o of objects) {
    const apiVersion = String(o.apiVersion);
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';
    if (BUILTIN_GROUPS.has(group)) {
      platform.push(o);
      continue;
    }
    const backed = CRD_BACKED_FILES[group];
    if (!backed?.crds[String(o.kind)]) {
      throw new Error(`${apiVersion} ${String(o.kind)} is neither built into Kubernetes nor in CRD_BACKED_FILES: add its group, kind and CRD name there (cdk8s/src/platform.ts)`);
    }
    byGroup.set(group, [...(byGroup.get(group) ?? []), o]);
  }
  const files: SynthFile[] = [{ file: '02-platform.yaml', objects: platform, requires: [] }];
  for (const [group, { file, crds }] of Object.entries(CRD_BACKED_FILES)) {
    const objs = byGroup.get(group);
    if (!objs) continue;
    files.push({ file, objects: objs, requires: [...new Set(objs.map((o) => crds[String(o.kind)]!))].sort() });
  }
  return files;
}

const DASHBOARD_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The rule groups of every file, in file order. The operator writes one PrometheusRule into one rule
 * file, and Prometheus refuses a file with two groups of the same name: refused here, naming both files.
 */
export function ruleGroups(files: readonly RuleFile[]): Record<string, unknown>[] {
  const groups: Record<string, unknown>[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const where = `monitoring/rules/${f.file}`;
    let doc: unknown;
    try {
      doc = parseYaml(f.yaml);
    } catch (err) {
      throw new Error(`${where} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    const list = doc && typeof doc === 'object' ? (doc as { groups?: unknown }).groups : undefined;
    if (!Array.isArray(list)) throw new Error(`${where} is not a Prometheus rule file (no "groups" list)`);
    list.forEach((g: unknown, i) => {
      const group = g as { name?: unknown; rules?: unknown } | null;
      if (!group || typeof group !== 'object' || typeof group.name !== 'string' || !Array.isArray(group.rules)) {
        throw new Error(`${where}: groups[${i}] needs a "name" and a "rules" list`);
      }
      const other = seen.get(group.name);
      if (other) throw new Error(`rule group "${group.name}" is in both monitoring/rules/${other} and ${where}: rename one (Prometheus refuses duplicate group names)`);
      seen.set(group.name, f.file);
      groups.push(group as Record<string, unknown>);
    });
  }
  return groups;
}

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
  new kplus.k8s.KubeNamespace(namespace, 'nats-ns', {
    metadata: {
      name: config.cluster.natsNamespace,
      labels: {
        'app.kubernetes.io/part-of': PART_OF,
        // Not meshed, so nothing needs an exception: `restricted` is enforced.
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/audit': 'restricted',
      },
    },
  });

  const platform = new Chart(app, 'platform');
  const nats = new NatsCluster(platform, 'nats', {
    replicas: config.nats.replicas,
    image: config.nats.image,
    imagePullPolicy: config.nats.imagePullPolicy,
    tolerations: config.nats.tolerations,
    clients: [{ namespace: ns, names: [...WORKLOADS, PROVISION_JOB] }],
    accounts: [natsAccount(config.natsUsersSecret)],
    cluster: config.cluster,
  });
  // The streams' and buckets' limits are shares of the servers' max_file_store (contracts' StreamLimits, BucketLimits).
  const settings = { NATS_URL: nats.url, JETSTREAM_REPLICAS: String(nats.streamReplicas), JETSTREAM_STORE_MIB: String(nats.maxFileStoreMiB) };
  new kplus.ConfigMap(platform, 'platform-config', {
    metadata: { name: PLATFORM_CONFIGMAP, namespace: ns, labels: { 'app.kubernetes.io/part-of': PART_OF } },
    data: settings,
  });
  // envFrom is read at container start: a change of the settings must roll the pods.
  const podAnnotations = { 'sagamesh.io/platform-config-sha256': createHash('sha256').update(JSON.stringify(settings)).digest('hex') };
  defaultDenyPolicy(platform, 'default-deny', ns);
  for (const [name, props] of Object.entries(serviceTopology(config))) {
    const identity = natsIdentityEnv(name as ServiceName, config.natsUsersSecret);
    new SagameshService(platform, name, {
      ...props,
      env: { ...props.env, ...identity.env },
      secretEnv: { ...props.secretEnv, ...identity.secretEnv },
      imageTag: config.imageTag,
      imagePullPolicy: config.imagePullPolicy,
      podAnnotations,
      cluster: config.cluster,
    });
  }
  const operatorIdentity = natsIdentityEnv('operator', config.natsUsersSecret);
  new SagaOperator(platform, 'operator', {
    imageTag: config.imageTag,
    imagePullPolicy: config.imagePullPolicy,
    podAnnotations,
    env: operatorIdentity.env,
    secretEnv: operatorIdentity.secretEnv,
    envFromConfigMaps: [PLATFORM_CONFIGMAP],
    cluster: config.cluster,
  });
  new NatsProvisionJob(platform, 'provision', {
    imageTag: config.imageTag,
    imagePullPolicy: config.imagePullPolicy,
    adminPassword: { secret: config.natsUsersSecret, key: 'admin' },
    envFromConfigMaps: [PLATFORM_CONFIGMAP],
    cluster: config.cluster,
  });

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

  const groups = ruleGroups(config.ruleFiles ?? []);
  if (groups.length > 0) {
    new ApiObject(platform, 'prometheus-rule', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: PROMETHEUS_RULE,
        namespace: ns,
        // No selector label needed: kube-prometheus-stack's Prometheus selects rules by any label in every
        // namespace (ruleSelectorNilUsesHelmValues: false, charts/values/kube-prometheus-stack.yaml).
        labels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': 'monitoring', 'app.kubernetes.io/managed-by': 'cdk8s' },
      },
      spec: { groups },
    });
  }
  return { crds, namespace, platform };
}

/**
 * Synthesizes the platform into files, in apply order: the sagamesh CRDs, the namespaces, the platform's
 * built-in kinds, then one file per group of CRD-backed kinds (each naming the CRDs it `requires`).
 */
export function synthPlatform(config: PlatformConfig): SynthFile[] {
  const app = new App({ outdir: '/nonexistent' });
  const charts = buildPlatform(app, config);
  return [
    { file: '00-crds.yaml', objects: charts.crds.toJson(), requires: [] },
    { file: '01-namespace.yaml', objects: charts.namespace.toJson(), requires: [] },
    ...splitByApi(charts.platform.toJson()),
  ];
}
