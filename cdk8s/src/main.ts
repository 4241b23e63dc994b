/**
 * `npm run synth -w cdk8s [-- --image-tag dev --out cdk8s/dist]`: writes the platform's manifests, one
 * YAML file per apply step (00-crds, 01-namespace, 02-platform), into the output directory.
 * The I/O edge: reads dashboards/*.json, monitoring/rules/*.yml and the CRDs from @sagamesh/contracts,
 * then calls the pure builder.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sagameshCrds } from '@sagamesh/contracts';
import { Yaml } from 'cdk8s';
import { type Dashboard, PLATFORM_DEFAULTS, type RuleFile, synthPlatform } from './platform.ts';

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

function main(): void {
  const { values } = parseArgs({
    options: {
      'image-tag': { type: 'string', default: PLATFORM_DEFAULTS.imageTag },
      out: { type: 'string', default: path.join(REPO_ROOT, 'cdk8s', 'dist') },
      dashboards: { type: 'string', default: path.join(REPO_ROOT, 'dashboards') },
      rules: { type: 'string', default: path.join(REPO_ROOT, 'monitoring', 'rules') },
    },
    strict: true,
  });
  const dashboards = readDashboards(values.dashboards!);
  const ruleFiles = readRuleFiles(values.rules!);
  const files = synthPlatform({ ...PLATFORM_DEFAULTS, imageTag: values['image-tag']!, crds: sagameshCrds(), dashboards, ruleFiles });
  const out = path.resolve(values.out!);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of files) writeFileSync(path.join(out, f.file), Yaml.stringify(...f.objects));
  const count = files.reduce((n, f) => n + f.objects.length, 0);
  console.log(`synth: ${count} objects (${dashboards.length} dashboards, ${ruleFiles.length} rule files) → ${path.relative(process.cwd(), out) || '.'}/{${files.map((f) => f.file).join(',')}}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`synth failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
