import { createHash } from 'node:crypto';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type ClusterRefs, DEFAULT_CLUSTER, NAME_LABEL, PART_OF } from './cluster.ts';
import type { ResourceProps, SecretEnvRef } from './service.ts';

type k8sPort = kplus.k8s.NetworkPolicyPort;

/** Subjects a user may (or may not) publish or subscribe to. */
export interface NatsSubjectPermission {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

/** One NATS user: the name a client connects with, its password (from a Secret), what it may do. */
export interface NatsUser {
  readonly user: string;
  /**
   * Its password, in a Secret of the NATS namespace. The server reads it from an environment variable
   * (`$NATS_PASSWORD_<USER>` in the config), so it is never written into the ConfigMap.
   */
  readonly password: SecretEnvRef;
  /** @default everything allowed */
  readonly permissions?: {
    readonly publish?: NatsSubjectPermission;
    readonly subscribe?: NatsSubjectPermission;
    /** May publish replies to the requests it received (request/reply servers). @default false */
    readonly allowResponses?: boolean;
  };
}

/** A NATS account: its own subject space (and JetStream assets when `jetstream` is on), and its users. */
export interface NatsAccount {
  readonly name: string;
  readonly jetstream: boolean;
  readonly users: readonly NatsUser[];
}

/** Who may open client connections: pods of a namespace, all of them or those with these `app.kubernetes.io/name`s. */
export interface NatsClientPeer {
  readonly namespace: string;
  /** @default every pod of the namespace */
  readonly names?: readonly string[];
}

export interface NatsClusterProps {
  /** Servers in the JetStream cluster: 1 (a single server, no routes), 3 (survives one down) or 5 (two). @default 3 */
  readonly replicas?: number;
  /** A pinned image whose nats-server binary is /usr/local/bin/nats-server. @default {@link NATS_DEFAULTS}.image, the official `nats:<version>-alpine` */
  readonly image?: string;
  /** `IfNotPresent` for a registry image, `Never` for an image side-loaded with `kind load` (fails fast instead of pulling). @default `IfNotPresent` */
  readonly imagePullPolicy?: 'IfNotPresent' | 'Never';
  /** The JetStream cluster's name (routes refuse servers of another cluster). @default `sagamesh` */
  readonly clusterName?: string;
  /** Route (cluster) port. @default 6222 */
  readonly clusterPort?: number;
  /** HTTP monitoring port (/varz, /jsz, /healthz), named `monitor`. @default 8222 */
  readonly monitorPort?: number;
  /** Each server's PersistentVolumeClaim and the JetStream file store on it. @default 2048 MiB, 1536 MiB of it for JetStream, the default StorageClass */
  readonly storage?: { readonly sizeMiB: number; readonly maxFileStoreMiB: number; readonly storageClassName?: string };
  /** JetStream memory store (streams here are on files; this bounds memory-backed ones). @default 64 */
  readonly maxMemoryStoreMiB?: number;
  /** @default {@link NATS_DEFAULTS}.resources (100m/1000m CPU, 256/512 MiB) */
  readonly resources?: ResourceProps;
  /**
   * Accounts and users, rendered into the server config's `accounts` block. Empty: no authentication
   * (every client is in the global account). Once set, every client must log in as one of these users.
   * @default []
   */
  readonly accounts?: readonly NatsAccount[];
  /** The account of the server's own system events; must be one of `accounts`. @default none */
  readonly systemAccount?: string;
  /** Who may connect on the client port (NetworkPolicy). @default every pod of the app namespace (`cluster.namespace`) */
  readonly clients?: readonly NatsClientPeer[];
  /** Taints the servers tolerate (e.g. kind's control plane, so three servers get three nodes). @default [] */
  readonly tolerations?: readonly kplus.k8s.Toleration[];
  /** Lame duck mode on stop: clients are moved off over `durationSeconds`, after `gracePeriodSeconds`. @default 30 s and 10 s */
  readonly lameDuck?: { readonly durationSeconds: number; readonly gracePeriodSeconds: number };
  /** UID/GID the server runs as. @default 1000 */
  readonly runAsUser?: number;
  /** Namespace, client Service name and port (`natsNamespace`, `natsService`, `natsPort`), where Prometheus runs. @default {@link DEFAULT_CLUSTER} */
  readonly cluster?: ClusterRefs;
}

export const NATS_VERSION = '2.15.2';

export const NATS_DEFAULTS = {
  replicas: 3,
  image: `nats:${NATS_VERSION}-alpine`,
  imagePullPolicy: 'IfNotPresent',
  clusterName: 'sagamesh',
  clusterPort: 6222,
  monitorPort: 8222,
  storage: { sizeMiB: 2048, maxFileStoreMiB: 1536 },
  maxMemoryStoreMiB: 64,
  resources: { cpuRequestMillis: 100, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 512 },
  lameDuck: { durationSeconds: 30, gracePeriodSeconds: 10 },
  runAsUser: 1000,
} as const satisfies {
  replicas: number;
  image: string;
  imagePullPolicy: string;
  clusterName: string;
  clusterPort: number;
  monitorPort: number;
  storage: { sizeMiB: number; maxFileStoreMiB: number };
  maxMemoryStoreMiB: number;
  resources: ResourceProps;
  lameDuck: { durationSeconds: number; gracePeriodSeconds: number };
  runAsUser: number;
};

/** The binary in both the official image and the offline build (the command is set explicitly, so entrypoints do not matter). */
export const NATS_BINARY = '/usr/local/bin/nats-server';
const CONFIG_DIR = '/etc/nats';
const CONFIG_FILE = 'nats.conf';
const DATA_DIR = '/data';
const RUN_DIR = '/var/run/nats';
/** The memory the server keeps beside its memory store (connections, buffers, the Go runtime). */
const SERVER_OVERHEAD_MIB = 128;
/** Time after lame duck mode for the server's own shutdown (JetStream snapshots, route close). */
const SHUTDOWN_OVERHEAD_S = 20;

// ---- the server config -------------------------------------------------------------------------

/** An unquoted `$NAME` in the config: nats-server substitutes the environment variable (and refuses to start without it). */
export class NatsEnvRef {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

export type NatsConfValue = string | number | boolean | NatsEnvRef | readonly NatsConfValue[] | { readonly [key: string]: NatsConfValue };

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function renderValue(v: NatsConfValue, indent: string): string {
  if (v instanceof NatsEnvRef) return `$${v.name}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[\n${(v as readonly NatsConfValue[]).map((x) => `${inner}${renderValue(x, inner)}`).join('\n')}\n${indent}]`;
  const entries = Object.entries(v as Record<string, NatsConfValue>);
  return entries.length === 0 ? '{}' : `{\n${renderEntries(entries, inner)}\n${indent}}`;
}

function renderEntries(entries: [string, NatsConfValue][], indent: string): string {
  return entries.map(([k, v]) => `${indent}${BARE_KEY.test(k) ? k : JSON.stringify(k)}: ${renderValue(v, indent)}`).join('\n');
}

/** The NATS config format (a superset of JSON): `key: value` lines, with `$NAME` references left unquoted. */
export function renderNatsConf(conf: Readonly<Record<string, NatsConfValue>>): string {
  return `${renderEntries(Object.entries(conf), '')}\n`;
}

/** The environment variable that carries a user's password (`orders-svc` → `NATS_PASSWORD_ORDERS_SVC`). */
export function passwordEnvName(user: string): string {
  return `NATS_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

export interface NatsServerConfOptions {
  /** This server's name, unique in the cluster (JetStream's peer id): in a pod, `$POD_NAME`. */
  readonly serverName: string | NatsEnvRef;
  readonly clientPort: number;
  readonly monitorPort: number;
  readonly storeDir: string;
  readonly pidFile: string;
  readonly maxFileStoreMiB: number;
  readonly maxMemoryStoreMiB: number;
  readonly lameDuck: { readonly durationSeconds: number; readonly gracePeriodSeconds: number };
  /** No cluster block when absent (a single server). */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
  readonly accounts: readonly NatsAccount[];
  readonly systemAccount?: string;
}

function permission(p: NatsSubjectPermission): Record<string, NatsConfValue> {
  return { ...(p.allow ? { allow: [...p.allow] } : {}), ...(p.deny ? { deny: [...p.deny] } : {}) };
}

/**
 * The nats-server config, one source for the pods and the tests that run it: JetStream on files,
 * monitoring, lame duck timings, the cluster routes, and the `accounts` slot (users read their
 * passwords from the environment).
 */
export function natsServerConf(o: NatsServerConfOptions): string {
  const conf: Record<string, NatsConfValue> = {
    server_name: o.serverName,
    port: o.clientPort,
    http_port: o.monitorPort,
    pid_file: o.pidFile,
    lame_duck_duration: `${o.lameDuck.durationSeconds}s`,
    lame_duck_grace_period: `${o.lameDuck.gracePeriodSeconds}s`,
    jetstream: { store_dir: o.storeDir, max_file_store: `${o.maxFileStoreMiB}M`, max_memory_store: `${o.maxMemoryStoreMiB}M` },
  };
  if (o.cluster) {
    // no_advertise: clients keep the Service URL (only ready servers behind it) instead of pod IPs.
    conf.cluster = { name: o.cluster.name, port: o.cluster.port, no_advertise: true, routes: [...o.cluster.routes] };
  }
  if (o.accounts.length > 0) {
    const accounts: Record<string, NatsConfValue> = {};
    for (const a of o.accounts) {
      accounts[a.name] = {
        ...(a.jetstream ? { jetstream: true } : {}),
        users: a.users.map((u) => {
          const p = u.permissions;
          const perms: Record<string, NatsConfValue> = {
            ...(p?.publish ? { publish: permission(p.publish) } : {}),
            ...(p?.subscribe ? { subscribe: permission(p.subscribe) } : {}),
            ...(p?.allowResponses ? { allow_responses: true } : {}),
          };
          return { user: u.user, password: new NatsEnvRef(passwordEnvName(u.user)), ...(Object.keys(perms).length ? { permissions: perms } : {}) };
        }),
      };
    }
    conf.accounts = accounts;
    if (o.systemAccount) conf.system_account = o.systemAccount;
  }
  return renderNatsConf(conf);
}

// ---- validation --------------------------------------------------------------------------------

/** Props that fail validation; the message lists every problem and how to fix it. */
export class NatsClusterPropsError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`NatsCluster: ${problems.join('; ')}`);
    this.name = 'NatsClusterPropsError';
    this.problems = problems;
  }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** repository[:tag] or repository@sha256:…, pinned: a tag other than latest, or a digest. */
const PINNED_IMAGE = /^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/;
const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const ACCOUNT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const USER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** A NATS subject or wildcard pattern: tokens separated by dots, no whitespace. */
const SUBJECT = /^([^.\s*>]+|\*)(\.([^.\s*>]+|\*))*(\.>)?$|^>$/;

function intIn(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Every problem with the props, each saying how to fix it. Pure; empty when the props are good. */
export function validateNatsProps(p: NatsClusterProps): string[] {
  const out: string[] = [];
  const c = p.cluster ?? DEFAULT_CLUSTER;
  const replicas = p.replicas ?? NATS_DEFAULTS.replicas;
  if (![1, 3, 5].includes(replicas)) {
    out.push(`replicas ${replicas}: JetStream needs a majority of its servers up, so use 1 (a single server), 3 (survives one down) or 5 (two down)`);
  }
  const image = p.image ?? NATS_DEFAULTS.image;
  if (!PINNED_IMAGE.test(image) || /:latest$/.test(image)) out.push(`image "${image}" must be a pinned reference, <repository>:<version> or <repository>@sha256:<digest>, e.g. "${NATS_DEFAULTS.image}"`);
  if (!CLUSTER_NAME.test(p.clusterName ?? NATS_DEFAULTS.clusterName)) out.push(`clusterName "${p.clusterName}" must be 1–64 letters, digits, '_' or '-' (nats-server refuses spaces)`);
  if (!DNS_LABEL.test(c.natsService) || c.natsService.length > 50) out.push(`cluster.natsService "${c.natsService}" must be a DNS-1123 label of at most 50 characters (the headless Service adds "-headless")`);
  if (!DNS_LABEL.test(c.natsNamespace)) out.push(`cluster.natsNamespace "${c.natsNamespace}" must be a DNS-1123 label`);
  const ports: [string, number][] = [['cluster.natsPort', c.natsPort], ['clusterPort', p.clusterPort ?? NATS_DEFAULTS.clusterPort], ['monitorPort', p.monitorPort ?? NATS_DEFAULTS.monitorPort]];
  for (const [what, port] of ports) if (!intIn(port, 1024, 65535)) out.push(`${what} ${port} must be an integer 1024–65535 (the server runs as non-root)`);
  if (new Set(ports.map(([, port]) => port)).size !== ports.length) out.push(`the client, cluster and monitor ports (${ports.map(([, port]) => port).join(', ')}) must differ`);

  const s: NonNullable<NatsClusterProps['storage']> = p.storage ?? NATS_DEFAULTS.storage;
  if (!intIn(s.sizeMiB, 256, 1_048_576)) out.push(`storage.sizeMiB ${s.sizeMiB} must be an integer 256–1048576`);
  else if (!intIn(s.maxFileStoreMiB, 64, Math.floor(s.sizeMiB * 0.9))) {
    out.push(`storage.maxFileStoreMiB ${s.maxFileStoreMiB} must be an integer from 64 to 90 % of storage.sizeMiB (${Math.floor(s.sizeMiB * 0.9)}): JetStream stops accepting writes at its limit, the volume must not fill first`);
  }
  if (s.storageClassName !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(s.storageClassName)) out.push(`storage.storageClassName "${s.storageClassName}" is not a valid StorageClass name`);

  const mem = p.maxMemoryStoreMiB ?? NATS_DEFAULTS.maxMemoryStoreMiB;
  const r = p.resources ?? NATS_DEFAULTS.resources;
  if (!(r.cpuRequestMillis > 0 && r.cpuRequestMillis <= r.cpuLimitMillis)) out.push(`resources: need 0 < cpuRequestMillis (${r.cpuRequestMillis}) <= cpuLimitMillis (${r.cpuLimitMillis})`);
  if (!(r.memoryRequestMiB > 0 && r.memoryRequestMiB <= r.memoryLimitMiB)) out.push(`resources: need 0 < memoryRequestMiB (${r.memoryRequestMiB}) <= memoryLimitMiB (${r.memoryLimitMiB})`);
  if (!intIn(mem, 0, 1_048_576)) out.push(`maxMemoryStoreMiB ${mem} must be an integer >= 0`);
  else if (mem + SERVER_OVERHEAD_MIB > r.memoryLimitMiB) {
    out.push(`resources.memoryLimitMiB ${r.memoryLimitMiB} must be at least maxMemoryStoreMiB + ${SERVER_OVERHEAD_MIB} (${mem + SERVER_OVERHEAD_MIB}) so a full memory store does not get the server OOM-killed`);
  }

  const ld = p.lameDuck ?? NATS_DEFAULTS.lameDuck;
  if (!intIn(ld.durationSeconds, 30, 300)) out.push(`lameDuck.durationSeconds ${ld.durationSeconds} must be an integer 30–300 (nats-server refuses less than 30 s)`);
  if (!intIn(ld.gracePeriodSeconds, 0, 300) || ld.gracePeriodSeconds >= ld.durationSeconds) out.push(`lameDuck.gracePeriodSeconds ${ld.gracePeriodSeconds} must be an integer >= 0 and below durationSeconds (${ld.durationSeconds})`);
  if (p.runAsUser !== undefined && !intIn(p.runAsUser, 1, 2_147_483_647)) out.push(`runAsUser ${p.runAsUser} must be a non-root UID (>= 1)`);

  const accounts = p.accounts ?? [];
  const accountNames = new Set<string>();
  const envNames = new Map<string, string>();
  for (const a of accounts) {
    if (!ACCOUNT_NAME.test(a.name)) out.push(`accounts: name "${a.name}" must be 1–64 letters, digits, '_' or '-'`);
    if (accountNames.has(a.name)) out.push(`accounts: "${a.name}" is defined twice; merge them`);
    accountNames.add(a.name);
    if (a.users.length === 0) out.push(`accounts: "${a.name}" has no users; add one or remove the account`);
    for (const u of a.users) {
      if (!USER_NAME.test(u.user)) out.push(`accounts.${a.name}: user "${u.user}" must be 1–64 letters, digits, '.', '_' or '-'`);
      const env = passwordEnvName(u.user);
      const other = envNames.get(env);
      if (other !== undefined) out.push(`accounts: users "${other}" and "${u.user}" ${other === u.user ? 'are the same user; a user belongs to one account' : `both read their password from ${env}; rename one`}`);
      envNames.set(env, u.user);
      if (!DNS_LABEL.test(u.password.secret) || u.password.key.length === 0) out.push(`accounts.${a.name}: user "${u.user}" needs a password { secret: <Secret name>, key: <key> } (got ${JSON.stringify(u.password)})`);
      const perms = u.permissions;
      for (const [what, rule] of [['publish', perms?.publish], ['subscribe', perms?.subscribe]] as const) {
        for (const subject of [...(rule?.allow ?? []), ...(rule?.deny ?? [])]) {
          if (!SUBJECT.test(subject)) out.push(`accounts.${a.name}: user "${u.user}" ${what} subject "${subject}" is not a NATS subject (dot-separated tokens, '*' for one token, '>' last)`);
        }
      }
    }
  }
  if (p.systemAccount !== undefined && !accountNames.has(p.systemAccount)) {
    out.push(`systemAccount "${p.systemAccount}" is not one of accounts (${[...accountNames].join(', ') || 'none'}): define it there`);
  }
  for (const peer of p.clients ?? []) {
    if (!DNS_LABEL.test(peer.namespace)) out.push(`clients: namespace "${peer.namespace}" must be a DNS-1123 label`);
    for (const n of peer.names ?? []) if (!DNS_LABEL.test(n)) out.push(`clients: "${n}" in ${peer.namespace} is not a workload name (DNS-1123 label)`);
    if (peer.names?.length === 0) out.push(`clients: names for ${peer.namespace} is empty; leave it out to allow every pod of the namespace`);
  }
  return out;
}

// ---- the construct -----------------------------------------------------------------------------

const tcp = (port: number): k8sPort => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) });
const nsSelector = (ns: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': ns } });

/**
 * The platform's NATS: a JetStream cluster as a StatefulSet — one server per pod, routes over a headless
 * Service, the file store on a PersistentVolumeClaim per server, a client Service, a PodDisruptionBudget
 * that keeps the quorum through a drain, preferred anti-affinity across nodes, lame duck mode on stop,
 * and a NetworkPolicy that admits only the platform's clients, the routes and Prometheus.
 */
export class NatsCluster extends Construct {
  readonly props: NatsClusterProps;
  readonly replicas: number;
  /** The in-cluster client URL (the client Service). */
  readonly url: string;
  /** Replicas for streams and buckets (JETSTREAM_REPLICAS): 3 on a cluster (JetStream's usual R3), 1 on a single server. */
  readonly streamReplicas: number;
  /** Each server's JetStream file store budget (max_file_store): the budget the platform's stream limits are shares of. */
  readonly maxFileStoreMiB: number;
  /** The pods' labels; `app.kubernetes.io/name=nats` is what Prometheus and NetworkPolicies select. */
  readonly labels: Readonly<Record<string, string>>;
  /** The rendered server config (in the ConfigMap). */
  readonly config: string;
  readonly statefulSet: kplus.k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: NatsClusterProps = {}) {
    super(scope, id);
    const problems = validateNatsProps(props);
    if (problems.length > 0) throw new NatsClusterPropsError(problems);
    this.props = props;
    const c = props.cluster ?? DEFAULT_CLUSTER;
    const name = c.natsService;
    const ns = c.natsNamespace;
    const headless = `${name}-headless`;
    const replicas = props.replicas ?? NATS_DEFAULTS.replicas;
    const clusterPort = props.clusterPort ?? NATS_DEFAULTS.clusterPort;
    const monitorPort = props.monitorPort ?? NATS_DEFAULTS.monitorPort;
    const storage: NonNullable<NatsClusterProps['storage']> = props.storage ?? NATS_DEFAULTS.storage;
    const res = props.resources ?? NATS_DEFAULTS.resources;
    const lameDuck = props.lameDuck ?? NATS_DEFAULTS.lameDuck;
    const uid = props.runAsUser ?? NATS_DEFAULTS.runAsUser;
    const accounts = props.accounts ?? [];
    this.replicas = replicas;
    this.streamReplicas = Math.min(replicas, 3);
    this.maxFileStoreMiB = storage.maxFileStoreMiB;
    this.url = `nats://${name}.${ns}.svc.cluster.local:${c.natsPort}`;
    this.labels = { [NAME_LABEL]: 'nats', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': 'messaging', 'app.kubernetes.io/managed-by': 'cdk8s' };
    const selector = { [NAME_LABEL]: 'nats', 'app.kubernetes.io/instance': name };
    const meta = (n: string) => ({ name: n, namespace: ns, labels: { ...this.labels } });

    this.config = natsServerConf({
      serverName: new NatsEnvRef('POD_NAME'),
      clientPort: c.natsPort,
      monitorPort,
      storeDir: DATA_DIR,
      pidFile: `${RUN_DIR}/nats.pid`,
      maxFileStoreMiB: storage.maxFileStoreMiB,
      maxMemoryStoreMiB: props.maxMemoryStoreMiB ?? NATS_DEFAULTS.maxMemoryStoreMiB,
      lameDuck,
      cluster:
        replicas > 1
          ? {
              name: props.clusterName ?? NATS_DEFAULTS.clusterName,
              port: clusterPort,
              // Every server lists all of them; a route to itself is recognised and dropped.
              routes: Array.from({ length: replicas }, (_, i) => `nats://${name}-${i}.${headless}.${ns}.svc.cluster.local:${clusterPort}`),
            }
          : undefined,
      accounts,
      systemAccount: props.systemAccount,
    });
    new kplus.k8s.KubeConfigMap(this, 'config', { metadata: meta(name), data: { [CONFIG_FILE]: this.config } });

    new kplus.k8s.KubeServiceAccount(this, 'sa', { metadata: meta(name), automountServiceAccountToken: false });

    new kplus.k8s.KubeService(this, 'headless', {
      metadata: meta(headless),
      spec: {
        clusterIp: 'None',
        // Routes must resolve before the servers are ready: readiness needs JetStream, which needs the routes.
        publishNotReadyAddresses: true,
        selector,
        ports: [
          { name: 'client', port: c.natsPort, targetPort: kplus.k8s.IntOrString.fromString('client') },
          { name: 'cluster', port: clusterPort, targetPort: kplus.k8s.IntOrString.fromString('cluster') },
          { name: 'monitor', port: monitorPort, targetPort: kplus.k8s.IntOrString.fromString('monitor') },
        ],
      },
    });
    new kplus.k8s.KubeService(this, 'client', {
      metadata: meta(name),
      spec: { type: 'ClusterIP', selector, ports: [{ name: 'client', port: c.natsPort, targetPort: kplus.k8s.IntOrString.fromString('client') }] },
    });

    const httpProbe = (path: string, periodSeconds: number, failureThreshold: number): kplus.k8s.Probe => ({
      httpGet: { path, port: kplus.k8s.IntOrString.fromString('monitor') },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 5,
    });
    const passwords = accounts.flatMap((a) => a.users).map((u) => ({
      name: passwordEnvName(u.user),
      valueFrom: { secretKeyRef: { name: u.password.secret, key: u.password.key } },
    }));
    this.statefulSet = new kplus.k8s.KubeStatefulSet(this, 'statefulset', {
      metadata: meta(name),
      spec: {
        serviceName: headless,
        replicas,
        // All servers start together: a cluster forms only once a majority of routes are up.
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate' },
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: { ...this.labels },
            annotations: {
              // A config change rolls the servers (one at a time, each waiting for the others' health).
              'sagamesh.io/config-sha256': createHash('sha256').update(this.config).digest('hex'),
              // NATS is server-speaks-first and carries its own protocol: never meshed.
              'linkerd.io/inject': 'disabled',
            },
          },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: lameDuck.durationSeconds + lameDuck.gracePeriodSeconds + SHUTDOWN_OVERHEAD_S,
            securityContext: { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: { type: 'RuntimeDefault' } },
            affinity: {
              podAntiAffinity: {
                // Preferred, not required: a cluster with fewer nodes than servers still runs them all.
                preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }],
              },
            },
            ...(props.tolerations?.length ? { tolerations: props.tolerations.map((t) => ({ ...t })) } : {}),
            containers: [
              {
                name: 'nats',
                image: props.image ?? NATS_DEFAULTS.image,
                imagePullPolicy: props.imagePullPolicy ?? NATS_DEFAULTS.imagePullPolicy,
                command: [NATS_BINARY],
                args: ['-c', `${CONFIG_DIR}/${CONFIG_FILE}`],
                ports: [
                  { name: 'client', containerPort: c.natsPort, protocol: 'TCP' },
                  { name: 'cluster', containerPort: clusterPort, protocol: 'TCP' },
                  { name: 'monitor', containerPort: monitorPort, protocol: 'TCP' },
                ],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  // The Go runtime collects harder near the limit instead of being OOM-killed.
                  { name: 'GOMEMLIMIT', value: `${Math.floor(res.memoryLimitMiB * 0.9)}MiB` },
                  ...passwords,
                ],
                resources: {
                  requests: { cpu: kplus.k8s.Quantity.fromString(`${res.cpuRequestMillis}m`), memory: kplus.k8s.Quantity.fromString(`${res.memoryRequestMiB}Mi`) },
                  limits: { cpu: kplus.k8s.Quantity.fromString(`${res.cpuLimitMillis}m`), memory: kplus.k8s.Quantity.fromString(`${res.memoryLimitMiB}Mi`) },
                },
                // Full health (JetStream current, streams caught up) before the first readiness: a rolling
                // update moves on only once the restarted server has caught up.
                startupProbe: httpProbe('/healthz', 5, 60),
                livenessProbe: httpProbe('/healthz?js-enabled-only=true', 10, 3),
                readinessProbe: httpProbe('/healthz?js-enabled-only=true', 5, 3),
                // Lame duck mode: clients move to the other servers before this one stops (TERM is ignored meanwhile).
                lifecycle: { preStop: { exec: { command: [NATS_BINARY, `-sl=ldm=${RUN_DIR}/nats.pid`] } } },
                securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'data', mountPath: DATA_DIR },
                  { name: 'run', mountPath: RUN_DIR },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name } },
              { name: 'run', emptyDir: { sizeLimit: kplus.k8s.Quantity.fromString('1Mi') } },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: { ...selector } },
            spec: {
              accessModes: ['ReadWriteOnce'],
              ...(storage.storageClassName ? { storageClassName: storage.storageClassName } : {}),
              resources: { requests: { storage: kplus.k8s.Quantity.fromString(`${storage.sizeMiB}Mi`) } },
            },
          },
        ],
      },
    });

    new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: meta(name),
      // One server at a time: the others keep the JetStream quorum (and every R3 stream its majority).
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });

    const clients = props.clients ?? [{ namespace: c.namespace }];
    new kplus.k8s.KubeNetworkPolicy(this, 'netpol', {
      metadata: meta(name),
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: clients.map((peer) => ({
              namespaceSelector: nsSelector(peer.namespace),
              ...(peer.names ? { podSelector: { matchExpressions: [{ key: NAME_LABEL, operator: 'In', values: [...peer.names].sort() }] } } : {}),
            })),
            ports: [tcp(c.natsPort)],
          },
          { from: [{ podSelector: { matchLabels: selector } }], ports: [tcp(clusterPort)] },
          { from: [{ namespaceSelector: nsSelector(c.monitoringNamespace), podSelector: { matchLabels: { ...c.prometheusPodLabels } } }], ports: [tcp(monitorPort)] },
        ],
        egress: [
          {
            to: [{ namespaceSelector: nsSelector('kube-system'), podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
            ports: [
              { protocol: 'UDP', port: kplus.k8s.IntOrString.fromNumber(53) },
              { protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(53) },
            ],
          },
          { to: [{ podSelector: { matchLabels: selector } }], ports: [tcp(clusterPort)] },
        ],
      },
    });
  }
}
