import path from 'node:path';
import { sagameshCrds } from '@sagamesh/contracts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import * as models from 'kubernetes-models';
import * as promOperator from '@kubernetes-models/prometheus-operator';
import { readRuleFiles } from '../src/main.ts';
import { PLATFORM_DEFAULTS, type PlatformConfig, synthPlatform } from '../src/platform.ts';

/** The real rule files: the schema checks and the PrometheusRule tests run on what ships. */
export const RULES_DIR = path.join(REPO_ROOT, 'monitoring', 'rules');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  [k: string]: any;
};

export const SAMPLE_DASHBOARD = JSON.stringify({ title: 'Golden signals', schemaVersion: 39, panels: [] });

export function testConfig(overrides: Partial<PlatformConfig> = {}): PlatformConfig {
  return {
    ...PLATFORM_DEFAULTS,
    crds: sagameshCrds(),
    dashboards: [{ name: 'golden-signals', json: SAMPLE_DASHBOARD }],
    ruleFiles: readRuleFiles(RULES_DIR),
    ...overrides,
  };
}

export function synthAll(config: PlatformConfig = testConfig()): K8sObject[] {
  return synthPlatform(config).flatMap((f) => f.objects as K8sObject[]);
}

/** `rbac.authorization.k8s.io` → `rbacAuthorizationK8sIo`, the kubernetes-models export name of a group. */
function groupExport(group: string): string {
  return group.split(/[.-]/).map((p, i) => (i === 0 ? p : p.charAt(0).toUpperCase() + p.slice(1))).join('');
}

/** Kinds whose schemas no maintained validator here has (CRDs of Linkerd): checked structurally instead. */
export const NO_SCHEMA_GROUPS = new Set(['policy.linkerd.io']);

/**
 * The kubernetes-models class for an apiVersion/kind: the built-in API (1.3x schemas) or the
 * prometheus-operator CRDs. Undefined when no model exists.
 */
export function modelFor(apiVersion: string, kind: string): (new (data: any) => { validate(): void }) | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const root: any = group === 'monitoring.coreos.com' ? promOperator : models;
  const ns = group === '' ? root : root[groupExport(group!)];
  if (group === '') return ns?.[version!]?.[kind];
  return ns?.[version!]?.[kind];
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the synthesized objects`);
  return o;
}

export function selects(selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string> | undefined): boolean {
  const m = selector?.matchLabels ?? {};
  return Object.keys(m).length > 0 && Object.entries(m).every(([k, v]) => labels?.[k] === v);
}
