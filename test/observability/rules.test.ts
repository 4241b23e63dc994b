/**
 * The Prometheus rules are valid (`promtool check rules`), their unit tests pass (`promtool test rules`:
 * the stuck-saga and success-ratio alerts fire on synthetic sick series and stay quiet on healthy ones),
 * those tests notice a broken alert, and every dashboard query parses as PromQL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, globSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { Metrics } from '@sagamesh/contracts';
import { buildDashboards, panelQueries, substituteVariables } from '@sagamesh/dashboards';
import { ensureTools, REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';

const RULES = globSync('monitoring/rules/*.yml', { cwd: REPO_ROOT }).sort();
const TESTS = globSync('monitoring/tests/*.yml', { cwd: REPO_ROOT }).sort();

function promtool(args: string[], cwd = REPO_ROOT): { status: number | null; output: string } {
  const res = spawnSync(toolPath('promtool'), args, { cwd, encoding: 'utf8' });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

before(async () => {
  await ensureTools(['promtool']);
});

test('promtool check rules: every rule file is valid', () => {
  assert.ok(RULES.length > 0, 'monitoring/rules/*.yml exist');
  const res = promtool(['check', 'rules', ...RULES]);
  assert.equal(res.status, 0, res.output);
  assert.match(res.output, /SUCCESS/);
});

test('promtool test rules: alerts fire on sick series and stay quiet on healthy ones', () => {
  assert.ok(TESTS.length > 0, 'monitoring/tests/*.yml exist');
  const res = promtool(['test', 'rules', ...TESTS]);
  assert.equal(res.status, 0, res.output);
});

test('the rule tests catch a broken stuck-saga or success-ratio alert', (t) => {
  const mutations: [string, RegExp, string][] = [
    ['SagaStuck never fires', /\(sagamesh_saga_stuck\) > 0/, '(sagamesh_saga_stuck) > 1000'],
    ['SagaSuccessRatioBelowObjective never fires', /sagamesh:saga_success_ratio:rate5m < 0\.95/, 'sagamesh:saga_success_ratio:rate5m < 0.5'],
    ['SagaStuck fires at once', /(alert: SagaStuck\n\s+expr: .*\n\s+)for: 2m/, '$1for: 0m'],
  ];
  for (const [what, from, to] of mutations) {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-rules-'));
    try {
      mkdirSync(path.join(dir, 'monitoring'));
      cpSync(path.join(REPO_ROOT, 'monitoring'), path.join(dir, 'monitoring'), { recursive: true });
      const file = path.join(dir, 'monitoring', 'rules', 'sagamesh.yml');
      const text = readFileSync(file, 'utf8');
      assert.match(text, from, `mutation "${what}" still applies to the rules`);
      writeFileSync(file, text.replace(from, to));
      const res = promtool(['test', 'rules', ...TESTS], dir);
      assert.notEqual(res.status, 0, `the rule tests pass although ${what}`);
      t.diagnostic(`mutant "${what}" caught`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('the rules use only metric names from contracts’ Metrics (and up)', () => {
  const known = new Set(Object.values(Metrics).flatMap((m) => [m, `${m}_bucket`, `${m}_count`, `${m}_sum`]));
  for (const file of RULES) {
    const doc = parse(readFileSync(path.join(REPO_ROOT, file), 'utf8')) as { groups: { rules: { expr: string; record?: string; alert?: string }[] }[] };
    for (const rule of doc.groups.flatMap((g) => g.rules)) {
      for (const name of rule.expr.match(/\bsagamesh_\w+/g) ?? []) assert.ok(known.has(name), `${file} ${rule.record ?? rule.alert}: ${name} is not in Metrics`);
      if (rule.alert) assert.ok(rule.expr.includes('sagamesh') || /\bup\{/.test(rule.expr), `${rule.alert} watches sagamesh series`);
    }
  }
});

test('every alert says what is wrong and what to do', () => {
  for (const file of RULES) {
    const doc = parse(readFileSync(path.join(REPO_ROOT, file), 'utf8')) as { groups: { rules: { alert?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[] };
    for (const rule of doc.groups.flatMap((g) => g.rules).filter((r) => r.alert)) {
      assert.ok((rule.annotations?.summary ?? '').length > 10, `${rule.alert}: summary`);
      assert.ok((rule.annotations?.description ?? '').length > 100, `${rule.alert}: description saying what to do`);
      assert.ok(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`);
    }
  }
});

test('every dashboard query (variables substituted) is valid PromQL', () => {
  const queries = Object.values(buildDashboards()).flatMap((d) => panelQueries(d));
  const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-dash-promql-'));
  try {
    const file = path.join(dir, 'queries.yml');
    // Each query as a recording rule: promtool parses every expression without a server.
    const rules = queries.map((query, i) => ({ record: `dashboard_query_${i}`, expr: substituteVariables(query.expr) }));
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules }] }));
    const res = promtool(['check', 'rules', file]);
    assert.equal(res.status, 0, res.output);
    assert.match(res.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
