/**
 * `node cdk8s/src/main.ts [--image-tag dev] [--offline] [--faults] [--out cdk8s/dist]`: writes the platform's
 * manifests into the output directory, one YAML file per apply step:
 *   00-crds.yaml, 01-namespace.yaml, 02-platform.yaml     built-in kinds: apply on any cluster
 *   03-linkerd.yaml, 04-prometheus-operator.yaml          CRD-backed kinds: apply only where their CRDs exist
 *   addons-offline.yaml                                   --offline only: metrics-server, kube-state-metrics, Prometheus
 * and prints which CRDs each CRD-backed file needs.
 * The I/O edge: reads dashboards/*.json, monitoring/rules/*.yml, tools/versions.env and the CRDs from
 * @sagamesh/contracts, then calls the pure builders.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sagameshCrds } from '@sagamesh/contracts';
import { Yaml } from 'cdk8s';
import { addonImages, parseVersionsEnv, synthOfflineAddons } from './addons/index.ts';
import { CONFIG_SCHEMAS } from './config-schemas.ts';
import { envProblems } from './env-check.ts';
import { type Dashboard, PLATFORM_DEFAULTS, type PlatformConfig, type RuleFile, type SynthFile, synthPlatform } from './platform.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Workspace files that live beside the dashboards but are not dashboards. */
const NOT_DASHBOARDS = /^(package(-lock)?|tsconfig.*)\.json$/;

/** Every dashboards/*.json present now (the dashboards are written independently; none is fine). */
export function readDashboards(dir: string): Dashboard[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json') && !NOT_DASHBOARDS.test(f)).sort();
  } catch {
    return [];
  }
  return files.map((f) => ({ name: f.slice(0, -'.json'.length), json: readFileSync(path.join(dir, f), 'utf8') }));
}

/** Every monitoring/rules/*.yml (the glob promtool and the local Prometheus use). A missing directory is an error: no silent loss of alerts. */
export function readRuleFiles(dir: string): RuleFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((file) => ({ file, yaml: readFileSync(path.join(dir, file), 'utf8') }));
}

/** One line per CRD-backed file: `<file> needs <crd>, …` (apply it only where they exist). */
export function crdRequirements(files: readonly SynthFile[]): string[] {
  return files.filter((f) => f.requires.length > 0).map((f) => `${f.file} needs ${f.requires.join(', ')}`);
}

export const USAGE = `usage: node cdk8s/src/main.ts [--help] [--image-tag <tag>] [--offline] [--faults] [--out <dir>] [--dashboards <dir>] [--rules <dir>]
  --image-tag  tag of the sagamesh/<service> images (default ${PLATFORM_DEFAULTS.imageTag})
  --offline    for a cluster with no registry: NATS from sagamesh-build/nats-server (tools/versions.env), app images
               never pulled (imagePullPolicy Never), plus addons-offline.yaml (metrics-server, kube-state-metrics, Prometheus)
  --faults     fault injection on (/admin/faults, a Saga's spec.faults): for a local demo cluster, as \`make up\` does
  --out        output directory of its own (default cdk8s/dist; emptied first)`;

export interface SynthOptions {
  readonly help: boolean;
  readonly imageTag: string;
  readonly offline: boolean;
  readonly faults: boolean;
  readonly out: string;
  readonly dashboards: string;
  readonly rules: string;
}

/** The command line, checked: unknown flags, stray arguments and an empty value are refused with the usage. */
export function parseSynthArgs(args: readonly string[]): SynthOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        'image-tag': { type: 'string', default: PLATFORM_DEFAULTS.imageTag },
        offline: { type: 'boolean', default: false },
        faults: { type: 'boolean', default: false },
        out: { type: 'string', default: path.join(REPO_ROOT, 'cdk8s', 'dist') },
        dashboards: { type: 'string', default: path.join(REPO_ROOT, 'dashboards') },
        rules: { type: 'string', default: path.join(REPO_ROOT, 'monitoring', 'rules') },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`, { cause: err });
  }
  for (const k of ['image-tag', 'out', 'dashboards', 'rules'] as const) {
    if (!values[k]) throw new Error(`--${k} needs a value\n${USAGE}`);
  }
  return { help: values.help!, imageTag: values['image-tag']!, offline: values.offline!, faults: values.faults!, out: values.out!, dashboards: values.dashboards!, rules: values.rules! };
}

/** The platform's config for the two paths: online (registry images) or offline (images built and side-loaded here). */
export function platformConfig(o: SynthOptions, versions: Readonly<Record<string, string>>, inputs: Pick<PlatformConfig, 'crds' | 'dashboards' | 'ruleFiles'>): PlatformConfig {
  const natsVersion = versions.NATS_SERVER_VERSION;
  if (!natsVersion || !/^v\d+\.\d+\.\d+$/.test(natsVersion)) throw new Error(`tools/versions.env: NATS_SERVER_VERSION "${natsVersion ?? ''}" must be a version like v2.15.2`);
  const nats = o.offline
    ? { ...PLATFORM_DEFAULTS.nats, image: addonImages(versions).natsServer, imagePullPolicy: 'Never' as const }
    : { ...PLATFORM_DEFAULTS.nats, image: `nats:${natsVersion.slice(1)}-alpine` };
  return {
    ...PLATFORM_DEFAULTS,
    ...inputs,
    imageTag: o.imageTag,
    imagePullPolicy: o.offline ? 'Never' : 'IfNotPresent',
    faultInjection: o.faults,
    nats,
  };
}

function main(): void {
  const o = parseSynthArgs(process.argv.slice(2));
  if (o.help) {
    console.log(USAGE);
    return;
  }
  const dashboards = readDashboards(o.dashboards);
  const ruleFiles = readRuleFiles(o.rules);
  const versions = parseVersionsEnv(readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8'));
  const files: SynthFile[] = synthPlatform(platformConfig(o, versions, { crds: sagameshCrds(), dashboards, ruleFiles }));
  const problems = envProblems(files.flatMap((f) => f.objects), CONFIG_SCHEMAS);
  if (problems.length > 0) throw new Error(`the workloads' environment does not match their config schemas:\n  ${problems.join('\n  ')}`);
  if (o.offline) {
    files.push({ ...synthOfflineAddons({ images: addonImages(versions), platformObjects: files.flatMap((f) => f.objects), ruleFiles }), requires: [] });
  }
  const out = path.resolve(o.out);
  // The directory is emptied: refuse one that holds anything but synthesized YAML (a mistyped --out).
  const foreign = existsSync(out) ? readdirSync(out).filter((f) => !f.endsWith('.yaml')) : [];
  if (foreign.length > 0) throw new Error(`--out ${out} holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}: give a directory of its own (it is emptied first)`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of files) writeFileSync(path.join(out, f.file), Yaml.stringify(...f.objects));
  const count = files.reduce((n, f) => n + f.objects.length, 0);
  const mode = `${o.offline ? 'offline' : 'online'}, faults ${o.faults ? 'on' : 'off'}`;
  console.log(`synth (${mode}): ${count} objects (${dashboards.length} dashboards, ${ruleFiles.length} rule files) → ${path.relative(process.cwd(), out) || '.'}/{${files.map((f) => f.file).join(',')}}`);
  for (const line of crdRequirements(files)) console.log(`  ${line}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`synth failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
