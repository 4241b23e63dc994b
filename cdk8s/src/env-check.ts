/**
 * Every workload's environment against the config schema its process parses at start: a variable the process does
 * not know (a typo, a knob nobody reads) or a required one missing fails the synth, not a pod at start-up. Pure.
 */
import type { TObject } from '@sinclair/typebox';

/** Workload name → the TypeBox schema its process loads (services/<name>/src/config.ts, operator/src/config.ts, the provisioning Job's). */
export type ConfigSchemas = Readonly<Record<string, TObject>>;

type Obj = Record<string, any>;

const OWN_COMPONENTS = new Set(['service', 'operator', 'provision']);
const WORKLOAD_KINDS = new Set(['Deployment', 'Job']);

/** The variables a workload's app container gets: its env, and every key of the ConfigMaps it takes whole. */
function envOf(deployment: Obj, configMaps: ReadonlyMap<string, Obj>, problems: string[]): Set<string> {
  const name = deployment.metadata.name as string;
  const app = (deployment.spec.template.spec.containers as Obj[]).find((c) => c.name === 'app') ?? deployment.spec.template.spec.containers[0];
  const names = new Set<string>((app.env ?? []).map((e: Obj) => e.name as string));
  for (const from of app.envFrom ?? []) {
    const cmName = from.configMapRef?.name as string | undefined;
    if (!cmName) continue;
    const cm = configMaps.get(cmName);
    if (!cm) problems.push(`${name}: envFrom ConfigMap ${cmName} is not part of the synth, so its keys cannot be checked`);
    else for (const k of Object.keys(cm.data ?? {})) names.add(k);
  }
  return names;
}

/** What is wrong with the environment of each of our Deployments and Jobs that has a schema (and each that should and has not). */
export function envProblems(objects: readonly Obj[], schemas: ConfigSchemas): string[] {
  const problems: string[] = [];
  const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name as string, o]));
  // Our own processes (the services and the operator); add-ons bring their own flags.
  const workloads = objects.filter((o) => WORKLOAD_KINDS.has(o.kind) && OWN_COMPONENTS.has(o.metadata?.labels?.['app.kubernetes.io/component']));
  for (const d of workloads) {
    const name = d.metadata.name as string;
    const schema = schemas[name];
    if (!schema) {
      problems.push(`${name}: no config schema to check its environment against (add it to cdk8s/src/config-schemas.ts)`);
      continue;
    }
    const known = schema.properties as Record<string, Obj>;
    const env = envOf(d, configMaps, problems);
    for (const k of [...env].sort()) {
      if (!(k in known)) problems.push(`${name}: sets ${k}, which its config does not know (known: ${Object.keys(known).sort().join(', ')}): remove it, or add it to the schema`);
    }
    for (const k of schema.required ?? []) {
      if (known[k]?.default === undefined && !env.has(k)) problems.push(`${name}: ${k} is required by its config and not set`);
    }
  }
  return problems;
}
