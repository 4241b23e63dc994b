import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type ClusterRefs, DEFAULT_CLUSTER, LinkerdPorts, NAME_LABEL, PART_OF, type WorkloadAccess } from './cluster.ts';
import { meshPolicy } from './mesh.ts';
import { type EgressRule, workloadNetworkPolicy } from './network.ts';

/** CPU in millicores, memory in MiB. */
export interface ResourceProps {
  readonly cpuRequestMillis: number;
  readonly cpuLimitMillis: number;
  readonly memoryRequestMiB: number;
  readonly memoryLimitMiB: number;
}

export interface AutoscalingProps {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Target average CPU utilisation of the app container, % of its request. */
  readonly targetCpuUtilization: number;
  /** How long the HPA waits before it scales in (scale-out is immediate). */
  readonly scaleDownStabilizationSeconds: number;
}

/** Timeouts and retries that meshed clients apply when they call this service (Linkerd HTTPRoutes). */
export interface RoutePolicyProps {
  /** Whole-request timeout, e.g. `2500ms`. */
  readonly requestTimeout: string;
  /** Retries of idempotent requests (GET): how many, and the timeout of each try. */
  readonly readRetries: number;
  readonly readRetryTimeout: string;
}

export interface SecretEnvRef {
  readonly secret: string;
  readonly key: string;
}

export interface SagameshServiceProps {
  /** Workload name (Deployment, Service, ServiceAccount, selector label): a DNS-1123 label of at most 40 characters. */
  readonly name: string;
  /** The one HTTP port: the API and the runtime's /livez, /readyz and /metrics. Passed to the process as PORT. */
  readonly port: number;
  /** Image repository. @default `sagamesh/<name>` */
  readonly image?: string;
  /** Image tag. @default `dev` */
  readonly imageTag?: string;
  /** `IfNotPresent` where a registry may serve it, `Never` for images only ever side-loaded with `kind load` (fails fast instead of pulling). @default `IfNotPresent` */
  readonly imagePullPolicy?: 'IfNotPresent' | 'Never';
  /** Extra pod-template annotations (e.g. a hash of the settings the pods read, so a change rolls them). @default {} */
  readonly podAnnotations?: Readonly<Record<string, string>>;
  /** `app.kubernetes.io/component`. @default `service` */
  readonly component?: string;
  /** Plain environment (no secrets: names like *KEY*, *TOKEN*, *SECRET*, *PASSWORD* must use `secretEnv`). @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** Environment variables read from Secrets. @default {} */
  readonly secretEnv?: Readonly<Record<string, SecretEnvRef>>;
  /** Environment variables from the pod's own metadata (downward API), e.g. `{ IDENTITY: 'metadata.name' }`. @default {} */
  readonly fieldRefEnv?: Readonly<Record<string, 'metadata.name' | 'metadata.namespace'>>;
  /** ConfigMaps whose keys all become environment variables (e.g. the NATS connection). @default [] */
  readonly envFromConfigMaps?: readonly string[];
  /** @default {@link SERVICE_DEFAULTS}.resources (50m/1000m CPU, 128/256 MiB) */
  readonly resources?: ResourceProps;
  /** CPU autoscaling, or `false` for a fixed replica count. @default {@link SERVICE_DEFAULTS}.autoscaling (2–5 replicas, 70 %, 60 s scale-in window) */
  readonly autoscaling?: AutoscalingProps | false;
  /** Fixed replica count; only with `autoscaling: false` (the HPA owns it otherwise). @default 1 */
  readonly replicas?: number;
  /** Workloads in the namespace (by name = service account) that may call `port`. @default [] */
  readonly callers?: readonly string[];
  /** Services this one calls over HTTP (egress to their pods on their port). @default [] */
  readonly calls?: readonly { readonly name: string; readonly port: number }[];
  /** Extra egress (e.g. the kube-apiserver for the operator). @default [] */
  readonly egress?: readonly EgressRule[];
  /** Reachable from outside the cluster through this NodePort (30000–32767). @default undefined (ClusterIP) */
  readonly nodePort?: number;
  /** Mount a service account token (only the operator talks to the kube-apiserver). @default false */
  readonly automountServiceAccountToken?: boolean;
  /** Timeouts/retries meshed callers apply; only meaningful with callers. @default {@link SERVICE_DEFAULTS}.routes when callers exist */
  readonly routes?: RoutePolicyProps;
  /** UID/GID the container runs as (the image's numeric non-root user). @default 1000 */
  readonly runAsUser?: number;
  /** @default 30 */
  readonly terminationGracePeriodSeconds?: number;
  /**
   * How long the process keeps answering after SIGTERM (SHUTDOWN_DELAY_MS) while kube-proxy drops the terminating pod
   * from its Service; 0 for a workload no Service sends requests to. @default 5
   */
  readonly shutdownDelaySeconds?: number;
  /** Prometheus scrape interval. @default `15s` */
  readonly scrapeInterval?: string;
  /** Where NATS, Prometheus and Linkerd live. @default {@link DEFAULT_CLUSTER} */
  readonly cluster?: ClusterRefs;
}

export const SERVICE_DEFAULTS = {
  imageTag: 'dev',
  component: 'service',
  // A small CPU request: the HPA's utilisation is usage ÷ request, so a demo load on a 2-core machine
  // crosses the target; a generous limit, so a busy pod is not throttled while the HPA catches up.
  resources: { cpuRequestMillis: 50, cpuLimitMillis: 1000, memoryRequestMiB: 128, memoryLimitMiB: 256 },
  // Two replicas at least: a pod deleted, crashed or drained leaves one serving (see the PDB).
  autoscaling: { minReplicas: 2, maxReplicas: 5, targetCpuUtilization: 70, scaleDownStabilizationSeconds: 60 },
  replicas: 1,
  routes: { requestTimeout: '2500ms', readRetries: 2, readRetryTimeout: '800ms' },
  runAsUser: 1000,
  terminationGracePeriodSeconds: 30,
  shutdownDelaySeconds: 5,
  scrapeInterval: '15s',
  /** Linkerd proxy sidecar resources (pod annotations), so the HPA and the scheduler see the whole pod. */
  proxy: { cpuRequest: '20m', cpuLimit: '500m', memoryRequest: '32Mi', memoryLimit: '128Mi' },
  tmpSizeMiB: 64,
} as const satisfies {
  imageTag: string;
  component: string;
  resources: ResourceProps;
  autoscaling: AutoscalingProps;
  replicas: number;
  routes: RoutePolicyProps;
  runAsUser: number;
  terminationGracePeriodSeconds: number;
  shutdownDelaySeconds: number;
  scrapeInterval: string;
  proxy: Record<string, string>;
  tmpSizeMiB: number;
};

/** Props that fail validation; the message lists every problem and how to fix it. */
export class SagameshServicePropsError extends Error {
  readonly problems: readonly string[];
  constructor(name: string, problems: string[]) {
    super(`SagameshService "${name}": ${problems.join('; ')}`);
    this.name = 'SagameshServicePropsError';
    this.problems = problems;
  }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const SECRET_LIKE = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const GO_DURATION = /^([0-9]+(ms|s|m|h))+$/;
const ANNOTATION_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const RESERVED_PORTS = new Set<number>(Object.values(LinkerdPorts));
/** Derived names (`<name>-http-callers`, …) must stay within 63 characters. */
const MAX_NAME = 40;

function intIn(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Every problem with the props, each saying how to fix it. Pure; empty when the props are good. */
export function validateServiceProps(p: SagameshServiceProps): string[] {
  const out: string[] = [];
  if (!DNS_LABEL.test(p.name) || p.name.length > MAX_NAME) {
    out.push(`name "${p.name}" must be a DNS-1123 label (lower-case letters, digits, '-') of at most ${MAX_NAME} characters, e.g. "orders"`);
  }
  if (!intIn(p.port, 1024, 65535)) out.push(`port ${p.port} must be an integer 1024–65535 (the container runs as non-root and cannot bind below 1024)`);
  else if (RESERVED_PORTS.has(p.port)) out.push(`port ${p.port} is a Linkerd proxy port (${[...RESERVED_PORTS].join(', ')}); pick another`);
  if (p.imageTag !== undefined && !IMAGE_TAG.test(p.imageTag)) out.push(`imageTag "${p.imageTag}" is not a valid image tag ([A-Za-z0-9_.-], at most 128 characters)`);
  const env = p.env ?? {};
  const secretEnv = p.secretEnv ?? {};
  const fieldEnv = p.fieldRefEnv ?? {};
  for (const k of [...Object.keys(env), ...Object.keys(secretEnv), ...Object.keys(fieldEnv)]) {
    if (!ENV_NAME.test(k)) out.push(`env name "${k}" must match ${ENV_NAME} (upper-case, digits, '_')`);
  }
  for (const k of Object.keys(env)) {
    if (SECRET_LIKE.test(k)) out.push(`env "${k}" looks like a secret: move it to secretEnv ({ secret, key }) so it is read from a Secret`);
    if (k in secretEnv || k in fieldEnv) out.push(`env "${k}" is also set in secretEnv or fieldRefEnv; keep one`);
    if (k === 'PORT') out.push('env "PORT" is set from the port prop; remove it from env');
  }
  const r = p.resources;
  if (r) {
    if (!(r.cpuRequestMillis > 0 && r.cpuRequestMillis <= r.cpuLimitMillis)) out.push(`resources: need 0 < cpuRequestMillis (${r.cpuRequestMillis}) <= cpuLimitMillis (${r.cpuLimitMillis})`);
    if (!(r.memoryRequestMiB > 0 && r.memoryRequestMiB <= r.memoryLimitMiB)) out.push(`resources: need 0 < memoryRequestMiB (${r.memoryRequestMiB}) <= memoryLimitMiB (${r.memoryLimitMiB})`);
  }
  // Absent autoscaling means the default HPA, so a replica count conflicts with it too.
  const a = p.autoscaling === undefined ? SERVICE_DEFAULTS.autoscaling : p.autoscaling;
  if (a) {
    if (!intIn(a.minReplicas, 1, 100)) out.push(`autoscaling.minReplicas ${a.minReplicas} must be an integer 1–100`);
    if (!intIn(a.maxReplicas, 1, 100) || a.maxReplicas < a.minReplicas) out.push(`autoscaling.maxReplicas ${a.maxReplicas} must be an integer >= minReplicas (${a.minReplicas}) and <= 100`);
    if (!intIn(a.targetCpuUtilization, 1, 100)) out.push(`autoscaling.targetCpuUtilization ${a.targetCpuUtilization} must be a percentage 1–100`);
    if (!intIn(a.scaleDownStabilizationSeconds, 0, 3600)) out.push(`autoscaling.scaleDownStabilizationSeconds ${a.scaleDownStabilizationSeconds} must be an integer 0–3600`);
    if (p.replicas !== undefined) out.push('replicas is set while autoscaling is on: the HPA owns the replica count — remove replicas, or set autoscaling: false');
  } else if (p.replicas !== undefined && !intIn(p.replicas, 1, 100)) {
    out.push(`replicas ${p.replicas} must be an integer 1–100`);
  }
  for (const c of p.callers ?? []) {
    if (!DNS_LABEL.test(c)) out.push(`callers: "${c}" is not a workload name (DNS-1123 label)`);
    if (c === p.name) out.push(`callers: "${c}" is this service itself; remove it`);
  }
  for (const c of p.calls ?? []) {
    if (!DNS_LABEL.test(c.name)) out.push(`calls: "${c.name}" is not a workload name (DNS-1123 label)`);
    if (!intIn(c.port, 1, 65535)) out.push(`calls: port ${c.port} of "${c.name}" must be 1–65535`);
  }
  if (p.nodePort !== undefined && !intIn(p.nodePort, 30000, 32767)) out.push(`nodePort ${p.nodePort} must be in the NodePort range 30000–32767 (kind-config.yaml maps it to the host)`);
  if (p.routes) {
    if (!GO_DURATION.test(p.routes.requestTimeout)) out.push(`routes.requestTimeout "${p.routes.requestTimeout}" must be a duration like 2500ms or 3s`);
    if (!GO_DURATION.test(p.routes.readRetryTimeout)) out.push(`routes.readRetryTimeout "${p.routes.readRetryTimeout}" must be a duration like 800ms`);
    if (!intIn(p.routes.readRetries, 0, 10)) out.push(`routes.readRetries ${p.routes.readRetries} must be an integer 0–10`);
  }
  if (p.runAsUser !== undefined && !intIn(p.runAsUser, 1, 2_147_483_647)) out.push(`runAsUser ${p.runAsUser} must be a non-root UID (>= 1)`);
  if (p.terminationGracePeriodSeconds !== undefined && !intIn(p.terminationGracePeriodSeconds, 1, 600)) {
    out.push(`terminationGracePeriodSeconds ${p.terminationGracePeriodSeconds} must be 1–600 (and above the service's SHUTDOWN_GRACE_MS)`);
  }
  const grace = p.terminationGracePeriodSeconds ?? SERVICE_DEFAULTS.terminationGracePeriodSeconds;
  if (p.shutdownDelaySeconds !== undefined && !(intIn(p.shutdownDelaySeconds, 0, 60) && p.shutdownDelaySeconds < grace)) {
    out.push(`shutdownDelaySeconds ${p.shutdownDelaySeconds} must be an integer 0–60 and below terminationGracePeriodSeconds (${grace}): the pod must still drain after it`);
  }
  if (p.scrapeInterval !== undefined && !GO_DURATION.test(p.scrapeInterval)) out.push(`scrapeInterval "${p.scrapeInterval}" must be a duration like 15s`);
  for (const k of Object.keys(p.podAnnotations ?? {})) {
    if (!ANNOTATION_KEY.test(k)) out.push(`podAnnotations: "${k}" is not an annotation key ([prefix/]name, e.g. "sagamesh.io/config-sha256")`);
    else if (/(^|\.)linkerd\.io\//.test(k) || k === 'kubectl.kubernetes.io/default-container') out.push(`podAnnotations: "${k}" is set by the service itself; remove it`);
  }
  return out;
}

/** The Kubernetes service-discovery meta label of a pod label (`app.kubernetes.io/name` → `__meta_kubernetes_pod_label_app_kubernetes_io_name`). */
export function podLabelMeta(label: string): string {
  return `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

export function serviceLabels(name: string, component: string): Record<string, string> {
  return { [NAME_LABEL]: name, 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': component, 'app.kubernetes.io/managed-by': 'cdk8s' };
}

/**
 * One sagamesh workload with everything it needs to run hardened in the meshed namespace: ServiceAccount,
 * Deployment (probes on the runtime's /livez and /readyz, resources, restricted securityContext, /tmp emptyDir,
 * Linkerd annotations), Service, HPA (autoscaling/v2, CPU), PodDisruptionBudget, NetworkPolicy, Linkerd
 * Server/AuthorizationPolicy/MeshTLSAuthentication (+ HTTPRoutes for its callers) and a PodMonitor.
 */
export class SagameshService extends Construct {
  readonly props: SagameshServiceProps;
  readonly deployment: kplus.Deployment;
  readonly service: kplus.Service;
  readonly serviceAccount: kplus.ServiceAccount;
  readonly autoscaler?: kplus.HorizontalPodAutoscaler;
  readonly labels: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: SagameshServiceProps) {
    super(scope, id);
    const problems = validateServiceProps(props);
    if (problems.length > 0) throw new SagameshServicePropsError(props.name, problems);
    this.props = props;
    const cluster = props.cluster ?? DEFAULT_CLUSTER;
    const name = props.name;
    const ns = cluster.namespace;
    const labels = serviceLabels(name, props.component ?? SERVICE_DEFAULTS.component);
    this.labels = labels;
    const selector = { [NAME_LABEL]: name };
    const res = props.resources ?? SERVICE_DEFAULTS.resources;
    const autoscaling = props.autoscaling === undefined ? SERVICE_DEFAULTS.autoscaling : props.autoscaling;
    const uid = props.runAsUser ?? SERVICE_DEFAULTS.runAsUser;
    const automount = props.automountServiceAccountToken ?? false;
    const meta = (suffix = '') => ({ name: `${name}${suffix}`, namespace: ns, labels });

    this.serviceAccount = new kplus.ServiceAccount(this, 'sa', { metadata: meta(), automountToken: automount });

    const envVariables: Record<string, kplus.EnvValue> = {
      PORT: kplus.EnvValue.fromValue(String(props.port)),
      SHUTDOWN_DELAY_MS: kplus.EnvValue.fromValue(String((props.shutdownDelaySeconds ?? SERVICE_DEFAULTS.shutdownDelaySeconds) * 1000)),
    };
    for (const [k, v] of Object.entries(props.env ?? {})) envVariables[k] = kplus.EnvValue.fromValue(v);
    for (const [k, field] of Object.entries(props.fieldRefEnv ?? {})) {
      envVariables[k] = kplus.EnvValue.fromFieldRef(field === 'metadata.name' ? kplus.EnvFieldPaths.POD_NAME : kplus.EnvFieldPaths.POD_NAMESPACE);
    }
    for (const [k, ref] of Object.entries(props.secretEnv ?? {})) {
      envVariables[k] = kplus.EnvValue.fromSecretValue({ secret: kplus.Secret.fromSecretName(this, `secret-${k}`, ref.secret), key: ref.key });
    }
    const envFrom = (props.envFromConfigMaps ?? []).map((cm, i) => kplus.Env.fromConfigMap(kplus.ConfigMap.fromConfigMapName(this, `envfrom-${i}`, cm)));

    const probe = (path: string, period: number, failures: number) =>
      kplus.Probe.fromHttpGet(path, { port: props.port, periodSeconds: Duration.seconds(period), failureThreshold: failures, timeoutSeconds: Duration.seconds(2) });
    const proxy = SERVICE_DEFAULTS.proxy;

    this.deployment = new kplus.Deployment(this, 'deployment', {
      metadata: meta(),
      select: false,
      podMetadata: {
        labels,
        annotations: {
          ...(props.podAnnotations ?? {}),
          'linkerd.io/inject': 'enabled',
          // NATS is server-speaks-first: Linkerd's protocol detection would stall each connection; bypass the proxy.
          'config.linkerd.io/skip-outbound-ports': String(cluster.natsPort),
          'config.linkerd.io/proxy-cpu-request': proxy.cpuRequest,
          'config.linkerd.io/proxy-cpu-limit': proxy.cpuLimit,
          'config.linkerd.io/proxy-memory-request': proxy.memoryRequest,
          'config.linkerd.io/proxy-memory-limit': proxy.memoryLimit,
          'kubectl.kubernetes.io/default-container': 'app',
        },
      },
      replicas: autoscaling ? undefined : (props.replicas ?? SERVICE_DEFAULTS.replicas),
      strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
      serviceAccount: this.serviceAccount,
      automountServiceAccountToken: automount,
      terminationGracePeriod: Duration.seconds(props.terminationGracePeriodSeconds ?? SERVICE_DEFAULTS.terminationGracePeriodSeconds),
      securityContext: { ensureNonRoot: true, user: uid, group: uid, fsGroup: uid },
      containers: [
        {
          name: 'app',
          image: `${props.image ?? `sagamesh/${name}`}:${props.imageTag ?? SERVICE_DEFAULTS.imageTag}`,
          // Images are side-loaded with `kind load docker-image`: IfNotPresent uses them; Never (offline) also
          // refuses to look for a missing one in a registry.
          imagePullPolicy: props.imagePullPolicy === 'Never' ? kplus.ImagePullPolicy.NEVER : kplus.ImagePullPolicy.IF_NOT_PRESENT,
          ports: [{ number: props.port, name: 'http', protocol: kplus.Protocol.TCP }],
          envVariables,
          envFrom,
          resources: {
            cpu: { request: kplus.Cpu.millis(res.cpuRequestMillis), limit: kplus.Cpu.millis(res.cpuLimitMillis) },
            memory: { request: Size.mebibytes(res.memoryRequestMiB), limit: Size.mebibytes(res.memoryLimitMiB) },
          },
          startup: probe('/livez', 2, 30),
          liveness: probe('/livez', 10, 3),
          readiness: probe('/readyz', 5, 2),
          securityContext: { ensureNonRoot: true, user: uid, group: uid, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false },
        },
      ],
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: selector }));
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: Size.mebibytes(SERVICE_DEFAULTS.tmpSizeMiB) });
    this.deployment.containers[0]!.mount('/tmp', tmp);
    // cdk8s-plus-27 has no typed field for these two: seccomp (pod) and dropping ALL capabilities (container).
    ApiObject.of(this.deployment).addJsonPatch(
      JsonPatch.add('/spec/template/spec/securityContext/seccompProfile', { type: 'RuntimeDefault' }),
      JsonPatch.add('/spec/template/spec/containers/0/securityContext/capabilities', { drop: ['ALL'] }),
      // cdk8s-plus labels every pod with its construct path; the selector is the name label, so drop it.
      JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'),
      // Replicas on different nodes where the nodes allow it: one node lost or drained leaves the others
      // serving. (cdk8s-plus' spread() would select by the construct-path label removed above.)
      JsonPatch.add('/spec/template/spec/affinity', {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }],
        },
      }),
    );

    this.service = new kplus.Service(this, 'service', {
      metadata: meta(),
      type: props.nodePort === undefined ? kplus.ServiceType.CLUSTER_IP : kplus.ServiceType.NODE_PORT,
      selector: kplus.Pods.select(this, 'pods', { labels: selector }),
      ports: [{ name: 'http', port: props.port, targetPort: props.port, protocol: kplus.Protocol.TCP, nodePort: props.nodePort }],
    });

    if (autoscaling) {
      this.autoscaler = new kplus.HorizontalPodAutoscaler(this, 'hpa', {
        metadata: meta(),
        target: this.deployment,
        minReplicas: autoscaling.minReplicas,
        maxReplicas: autoscaling.maxReplicas,
        // The app container only: the Linkerd proxy's CPU would blur the signal.
        metrics: [kplus.Metric.containerCpu({ container: this.deployment.containers[0]!, target: kplus.MetricTarget.averageUtilization(autoscaling.targetCpuUtilization) })],
        // A live demo: scale out at once (double, or +4 pods, every 15 s), scale in after a short window.
        scaleUp: {
          stabilizationWindow: Duration.seconds(0),
          strategy: kplus.ScalingStrategy.MAX_CHANGE,
          policies: [
            { replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) },
            { replicas: kplus.Replicas.absolute(4), duration: Duration.seconds(15) },
          ],
        },
        scaleDown: {
          stabilizationWindow: Duration.seconds(autoscaling.scaleDownStabilizationSeconds),
          strategy: kplus.ScalingStrategy.MAX_CHANGE,
          policies: [{ replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) }],
        },
      });
    }

    new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: meta(),
      spec: {
        // One pod at a time: with two or more replicas a drain always leaves one serving (it waits for the
        // evicted pod's replacement to be ready before the next eviction); a single replica never blocks it.
        maxUnavailable: kplus.k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: selector },
        unhealthyPodEvictionPolicy: 'AlwaysAllow',
      },
    });

    const access: WorkloadAccess = { name, labels, port: props.port, cluster, callers: props.callers ?? [], public: props.nodePort !== undefined };
    workloadNetworkPolicy(this, 'netpol', { ...access, calls: props.calls ?? [], egress: props.egress ?? [] });
    meshPolicy(this, 'mesh', { ...access, routes: access.callers.length > 0 ? (props.routes ?? SERVICE_DEFAULTS.routes) : props.routes });

    new ApiObject(this, 'podmonitor', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: meta(),
      spec: {
        selector: { matchLabels: selector },
        podMetricsEndpoints: [
          {
            port: 'http',
            path: '/metrics',
            interval: props.scrapeInterval ?? SERVICE_DEFAULTS.scrapeInterval,
            // The app's own labels (service, route, …) win over the target's, as under the local Prometheus.
            honorLabels: true,
            // Dashboards and alerts group by `service`: give it to the series the app does not label
            // (process metrics, `up`), from the pod's name label. The operator still adds namespace/pod.
            relabelings: [{ sourceLabels: [podLabelMeta(NAME_LABEL)], targetLabel: 'service' }],
          },
        ],
      },
    });
  }
}
