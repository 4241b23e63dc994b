/** What every offline add-on workload shares: labels, the restricted security context, small resources. */
import * as kplus from 'cdk8s-plus-27';
import { NAME_LABEL, PART_OF } from '../cluster.ts';

/** The numeric non-root user of the add-on images (images/addons/*.Dockerfile). */
export const ADDON_UID = 65532;

export function addonLabels(name: string, component: string): Record<string, string> {
  return { [NAME_LABEL]: name, 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': component, 'app.kubernetes.io/managed-by': 'cdk8s' };
}

/** Pod-level half of the `restricted` Pod Security profile. */
export function restrictedPod(): kplus.k8s.PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: ADDON_UID, runAsGroup: ADDON_UID, fsGroup: ADDON_UID, seccompProfile: { type: 'RuntimeDefault' } };
}

/** Container-level half: no privilege escalation, no capabilities, nothing written outside mounted volumes. */
export function restrictedContainer(): kplus.k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: ADDON_UID,
    runAsGroup: ADDON_UID,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
}

/** CPU in millicores, memory in MiB: the cluster shares 2 cores with the platform, so requests stay small. */
export interface AddonResources {
  readonly cpuRequestMillis: number;
  readonly cpuLimitMillis: number;
  readonly memoryRequestMiB: number;
  readonly memoryLimitMiB: number;
}

export function resources(r: AddonResources): kplus.k8s.ResourceRequirements {
  const q = kplus.k8s.Quantity.fromString;
  return {
    requests: { cpu: q(`${r.cpuRequestMillis}m`), memory: q(`${r.memoryRequestMiB}Mi`) },
    limits: { cpu: q(`${r.cpuLimitMillis}m`), memory: q(`${r.memoryLimitMiB}Mi`) },
  };
}

export function httpProbe(path: string, port: string, opts: { https?: boolean; period?: number; failures?: number; initialDelay?: number } = {}): kplus.k8s.Probe {
  return {
    httpGet: { path, port: kplus.k8s.IntOrString.fromString(port), scheme: opts.https ? 'HTTPS' : 'HTTP' },
    periodSeconds: opts.period ?? 10,
    failureThreshold: opts.failures ?? 3,
    timeoutSeconds: 2,
    ...(opts.initialDelay ? { initialDelaySeconds: opts.initialDelay } : {}),
  };
}

/** An emptyDir for the only paths a read-only root filesystem leaves writable. */
export function emptyDir(name: string, sizeMiB: number): kplus.k8s.Volume {
  return { name, emptyDir: { sizeLimit: kplus.k8s.Quantity.fromString(`${sizeMiB}Mi`) } };
}
