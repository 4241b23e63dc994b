/**
 * `npm test`: every test tier that needs no cluster, in order, with one closing line.
 *   node scripts/test.ts [--recap FILE] [tier ...]     tiers: static unit nats k8s e2e browser (default: all of these), cluster
 *   --recap FILE: also write the failed tests and their errors to FILE (make test-cluster prints it after make down)
 * The cluster tier (*.cluster.test.ts) needs the live kind cluster of `make up OFFLINE=1`: `make test-cluster`
 * builds it, runs this tier, and deletes it.
 * Tiers by file name: *.test.ts unit, *.nats.test.ts real nats-server, *.k8s.test.ts real
 * kube-apiserver + etcd, *.e2e.test.ts the whole platform as processes, *.browser.test.ts the saga explorer in
 * Debian's chromium (installed with apt when missing) on the whole platform. Under CI=true the long
 * tiers run smaller (each test says how); nothing is skipped silently.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { globSync } from 'node:fs';
import { ensureTools, REPO_ROOT, ALL_TOOLS } from './lib/tools.ts';

interface Tier {
  name: string;
  what: string;
  files?: () => string[];
  concurrency?: number;
  command?: string[];
  /** Not part of the default run (`npm test`): only when named. */
  onlyWhenAsked?: boolean;
  /** Run the files one after another in the order `files` gives. */
  inOrder?: boolean;
}
const testGlobs = ['libs/*/test/**/*.ts', 'services/*/test/**/*.ts', 'operator/test/**/*.ts', 'cdk8s/test/**/*.ts', 'dashboards/test/**/*.ts', 'ui/test/**/*.ts', 'test/**/*.ts', 'scripts/test/**/*.ts'];
const allTests = () =>
  testGlobs.flatMap((g) => globSync(g, { cwd: REPO_ROOT })).filter((f) => f.endsWith('.test.ts') && !f.includes('node_modules')).sort();
const suffix = (s: string) => () => allTests().filter((f) => f.endsWith(s));
const tiers: Tier[] = [
  { name: 'static', what: 'type check (tsc) and dependency rules', command: ['npm', 'run', '--silent', 'lint'] },
  { name: 'unit', what: 'pure logic', files: () => allTests().filter((f) => !/\.(nats|k8s|e2e|browser|cluster)\.test\.ts$/.test(f)), concurrency: 2 },
  { name: 'nats', what: 'integration on a real nats-server', files: suffix('.nats.test.ts'), concurrency: 2 },
  { name: 'k8s', what: 'operator and manifests on a real kube-apiserver + etcd', files: suffix('.k8s.test.ts'), concurrency: 1 },
  { name: 'e2e', what: 'the whole platform as processes, under load, with faults', files: suffix('.e2e.test.ts'), concurrency: 1 },
  { name: 'browser', what: 'the saga explorer in a real browser (chromium) on the whole platform', files: suffix('.browser.test.ts'), concurrency: 1 },
  { name: 'cluster', what: 'the live kind cluster of make up OFFLINE=1', files: clusterTests, concurrency: 1, onlyWhenAsked: true, inOrder: true },
];

// In the story's order: what runs, the walk-through, the HPA demo, faults, then the dashboards over all of it.
function clusterTests(): string[] {
  const order = ['platform', 'dockerfile', 'walkthrough', 'hpa', 'faults', 'dashboards'];
  const rank = (f: string) => {
    const i = order.indexOf(path.basename(f, '.cluster.test.ts'));
    return i < 0 ? order.length : i;
  };
  return suffix('.cluster.test.ts')().sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const args = process.argv.slice(2);
const recapAt = args.indexOf('--recap');
const recapFile = recapAt >= 0 ? args.splice(recapAt, 2)[1] : undefined;
if (recapAt >= 0 && !recapFile) {
  console.error('--recap needs a file');
  process.exit(2);
}
const wanted = args;
const unknown = wanted.filter((w) => !tiers.some((t) => t.name === w));
if (unknown.length) {
  console.error(`unknown tier(s): ${unknown.join(', ')}; tiers: ${tiers.map((t) => t.name).join(', ')}`);
  process.exit(2);
}
const selected = tiers.filter((t) => (wanted.length === 0 ? !t.onlyWhenAsked : wanted.includes(t.name)));
if (selected.some((t) => t.name !== 'static' && t.name !== 'unit')) await ensureTools(ALL_TOOLS);

const totals = { passed: 0, failed: 0, skipped: 0 };
const failedTiers: string[] = [];
const failures: string[] = [];
const reportDir = mkdtempSync(path.join(tmpdir(), 'sagamesh-test-'));
const started = Date.now();
for (const tier of selected) {
  const t0 = Date.now();
  console.log(`\n=== tier ${tier.name}: ${tier.what}`);
  if (tier.command) {
    const res = spawnSync(tier.command[0]!, tier.command.slice(1), { stdio: 'inherit', cwd: REPO_ROOT });
    // Static checks are not tests: they count only when they fail, so the closing line shows it.
    if (res.status !== 0) (totals.failed++, failedTiers.push(tier.name), failures.push(`tier ${tier.name}: exit ${res.status}`));
    console.log(`=== tier ${tier.name}: ${res.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    continue;
  }
  const files = tier.files!();
  if (files.length === 0) {
    console.log(`=== tier ${tier.name}: no test files yet`);
    continue;
  }
  // One run for the tier, or one per file where the files tell a story in order (node --test sorts what it is given).
  const runs = tier.inOrder ? files.map((f) => [f]) : [files];
  let counts = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  let ok = true;
  for (const [i, run] of runs.entries()) {
    const countsFile = path.join(reportDir, `${tier.name}-${i}.json`);
    const res = spawnSync(
      process.execPath,
      ['--test', `--test-concurrency=${tier.concurrency ?? 1}`, '--test-reporter=spec', '--test-reporter-destination=stdout',
        `--test-reporter=${path.join(REPO_ROOT, 'scripts/lib/count-reporter.ts')}`, `--test-reporter-destination=${countsFile}`, ...run],
      { stdio: 'inherit', cwd: REPO_ROOT },
    );
    let c = { passed: 0, failed: 1, skipped: 0, todo: 0, failures: [] as string[] };
    try {
      c = JSON.parse(readFileSync(countsFile, 'utf8'));
    } catch {
      console.log(`(tier ${tier.name}${tier.inOrder ? `, ${run[0]}` : ''} wrote no totals: counted as a failure)`);
    }
    failures.push(...(c.failures ?? []));
    counts = { passed: counts.passed + c.passed, failed: counts.failed + c.failed, skipped: counts.skipped + c.skipped, todo: counts.todo + (c.todo ?? 0) };
    if (res.status !== 0) ok = false;
  }
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  totals.skipped += counts.skipped;
  if (!ok || counts.failed > 0) failedTiers.push(tier.name);
  console.log(`=== tier ${tier.name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  // A todo is a known limit that runs and reports (its reason printed above) without failing the tier.
  if (counts.todo) console.log(`=== tier ${tier.name}: ${counts.todo} todo (known limits, see their reasons above)`);
}
rmSync(reportDir, { recursive: true, force: true });
const recap = failures.length ? `failed:\n${failures.map((f) => `  - ${f}`).join('\n')}\n` : '';
if (recapFile) writeFileSync(recapFile, recap);
if (recap) console.log(`\n${recap}`);
console.log(`\nall tiers in ${((Date.now() - started) / 1000).toFixed(0)}s${failedTiers.length ? `; failed tiers: ${failedTiers.join(', ')}` : ''}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedTiers.length ? 1 : 0);
