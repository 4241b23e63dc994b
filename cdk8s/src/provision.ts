import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { type ClusterRefs, DEFAULT_CLUSTER, NAME_LABEL, PART_OF } from './cluster.ts';
import { busClientEgress } from './network.ts';
import type { SecretEnvRef } from './service.ts';

export interface NatsProvisionJobProps {
  /** An image that carries libs/runtime (every sagamesh image does). @default `sagamesh/orchestrator:<imageTag>` */
  readonly image?: string;
  /** @default `dev` */
  readonly imageTag?: string;
  /** @default `IfNotPresent` */
  readonly imagePullPolicy?: 'IfNotPresent' | 'Never';
  /** The admin identity's password: only it may create and update streams and buckets. */
  readonly adminPassword: SecretEnvRef;
  /** ConfigMaps with NATS_URL, JETSTREAM_REPLICAS and JETSTREAM_STORE_MIB. @default [] */
  readonly envFromConfigMaps?: readonly string[];
  /** UID/GID it runs as (the image's non-root user). @default 1000 */
  readonly runAsUser?: number;
  /** @default {@link DEFAULT_CLUSTER} */
  readonly cluster?: ClusterRefs;
}

export const PROVISION_JOB = 'nats-provision';
/** The entry point in every sagamesh image: the bundle of libs/runtime/src/provision-main.ts (scripts/lib/build.ts). */
export const PROVISION_ENTRY = '/app/libs/runtime/dist/provision-main.mjs';

/**
 * The platform's streams and buckets, created or updated by the admin identity (the services may only use them and
 * wait until they exist): a Job that retries until NATS has formed. `make up` deletes it before each apply, so every
 * run provisions with the specs of the images it deploys. Not meshed: a Linkerd proxy would keep the pod from ending.
 */
export class NatsProvisionJob extends Construct {
  readonly job: kplus.k8s.KubeJob;

  constructor(scope: Construct, id: string, props: NatsProvisionJobProps) {
    super(scope, id);
    const cluster = props.cluster ?? DEFAULT_CLUSTER;
    const uid = props.runAsUser ?? 1000;
    if (!Number.isInteger(uid) || uid < 1) throw new Error(`NatsProvisionJob: runAsUser ${uid} must be a non-root UID (>= 1)`);
    if (!props.adminPassword.secret || !props.adminPassword.key) throw new Error('NatsProvisionJob: adminPassword needs { secret, key } naming the admin identity\'s password');
    const labels = { [NAME_LABEL]: PROVISION_JOB, 'app.kubernetes.io/component': 'provision', 'app.kubernetes.io/part-of': PART_OF };
    const metadata = { name: PROVISION_JOB, namespace: cluster.namespace, labels };

    this.job = new kplus.k8s.KubeJob(this, 'job', {
      metadata,
      spec: {
        // NATS may still be forming when the Job starts: the process waits itself, and a failed run is retried.
        backoffLimit: 6,
        activeDeadlineSeconds: 900,
        template: {
          metadata: { labels, annotations: { 'linkerd.io/inject': 'disabled' } },
          spec: {
            restartPolicy: 'OnFailure',
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'provision',
                image: props.image ?? `sagamesh/orchestrator:${props.imageTag ?? 'dev'}`,
                imagePullPolicy: props.imagePullPolicy ?? 'IfNotPresent',
                command: ['tini', '--', 'node', PROVISION_ENTRY],
                env: [
                  { name: 'NATS_USER', value: 'admin' },
                  { name: 'NATS_PASSWORD', valueFrom: { secretKeyRef: { name: props.adminPassword.secret, key: props.adminPassword.key } } },
                ],
                envFrom: (props.envFromConfigMaps ?? []).map((name) => ({ configMapRef: { name } })),
                resources: {
                  requests: { cpu: kplus.k8s.Quantity.fromString('50m'), memory: kplus.k8s.Quantity.fromString('64Mi') },
                  limits: { cpu: kplus.k8s.Quantity.fromString('500m'), memory: kplus.k8s.Quantity.fromString('256Mi') },
                },
                securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    });

    // The namespace denies by default: DNS and the NATS client port out, nothing in.
    new kplus.k8s.KubeNetworkPolicy(this, 'netpol', {
      metadata,
      spec: {
        podSelector: { matchLabels: { [NAME_LABEL]: PROVISION_JOB } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: busClientEgress(cluster),
      },
    });
  }
}
