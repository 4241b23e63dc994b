/**
 * The committed dashboards/*.json are exactly what the generator writes, and every dashboard follows
 * the house rules: stable uid, the datasource/namespace/service variables, a description, a unit and
 * an axis label on every panel, metric names from contracts' Metrics, and cluster-only panels marked.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Metrics } from '@sagamesh/contracts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { buildDashboards, CLUSTER_MARKER, dashboardFileText, DEFAULT_VARIABLES, panelQueries, substituteVariables } from '../src/index.ts';

const DIR = path.join(REPO_ROOT, 'dashboards');
const built = buildDashboards();

test('the committed dashboards/*.json are what `npm run generate -w dashboards` writes', () => {
  const committed = readdirSync(DIR)
    .filter((f) => f.endsWith('.json') && !/^(package(-lock)?|tsconfig.*)\.json$/.test(f))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
  assert.deepEqual(committed, Object.keys(built).sort(), 'one committed file per generated dashboard (run `npm run generate -w dashboards`)');
  for (const [name, d] of Object.entries(built)) {
    assert.equal(readFileSync(path.join(DIR, `${name}.json`), 'utf8'), dashboardFileText(d), `dashboards/${name}.json is stale: run \`npm run generate -w dashboards\``);
  }
});

test('generation is deterministic', () => {
  const again = buildDashboards();
  for (const [name, d] of Object.entries(built)) assert.equal(dashboardFileText(again[name]!), dashboardFileText(d), name);
});

test('stable uids and titles', () => {
  assert.deepEqual(
    Object.fromEntries(Object.entries(built).map(([name, d]) => [name, d.uid])),
    { 'platform-overview': 'sagamesh-overview', sagas: 'sagamesh-sagas', jetstream: 'sagamesh-jetstream', autoscaling: 'sagamesh-autoscaling' },
  );
  for (const d of Object.values(built)) assert.match(d.title ?? '', /^sagamesh \/ /);
});

test('every dashboard has the datasource, namespace and service variables, and queries use the datasource variable', () => {
  for (const d of Object.values(built)) {
    const vars = (d.templating?.list ?? []).map((v) => v.name);
    for (const v of ['datasource', 'namespace', 'service']) assert.ok(vars.includes(v), `${d.title} lacks the $${v} variable`);
    for (const v of d.templating?.list ?? []) if (v.type === 'query') assert.deepEqual(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `${d.title} $${v.name}`);
  }
});

interface PanelJson {
  id: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: unknown;
  fieldConfig?: { defaults?: { unit?: string; custom?: { axisLabel?: string } } };
  targets?: { refId?: string; expr?: string; datasource?: unknown }[];
}
const panels = (d: unknown) => ((d as { panels: PanelJson[] }).panels ?? []).filter((p) => p.type !== 'row');

test('every panel has a description, a unit, an axis label (time series), a datasource and uniquely named targets', () => {
  for (const d of Object.values(built)) {
    const ids = new Set<number>();
    for (const p of panels(d)) {
      const where = `${d.title} / ${p.title}`;
      assert.ok(!ids.has(p.id), `${where}: duplicate panel id ${p.id}`);
      ids.add(p.id);
      assert.ok((p.description ?? '').length > 20, `${where}: needs a description`);
      assert.ok(p.fieldConfig?.defaults?.unit, `${where}: needs a unit`);
      if (p.type === 'timeseries') assert.ok(p.fieldConfig?.defaults?.custom?.axisLabel, `${where}: needs an axis label`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${where}: datasource`);
      const targets = p.targets ?? [];
      assert.ok(targets.length > 0, `${where}: no query`);
      assert.equal(new Set(targets.map((t) => t.refId)).size, targets.length, `${where}: refIds must differ`);
      for (const t of targets) assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${datasource}' }, `${where} ${t.refId}: datasource`);
    }
  }
});

const APP_METRICS = new Set(Object.values(Metrics).flatMap((m) => [m, `${m}_bucket`, `${m}_count`, `${m}_sum`]));
// Whose series only a cluster has: Linkerd's proxies, kube-state-metrics, cAdvisor.
const CLUSTER_ONLY = /\b(response_total|response_latency_ms_bucket|kube_\w+|container_\w+)\b/;
// Outside sagamesh_*: what Prometheus and prom-client's default metrics provide everywhere.
const EVERYWHERE = new Set(['up', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']);

test('metric names come from contracts’ Metrics, and exactly the panels that need cluster metrics are marked', () => {
  const queries = Object.values(built).flatMap((d) => panelQueries(d));
  assert.ok(queries.length > 30);
  for (const query of queries) {
    const where = `${query.dashboard} / ${query.panel} ${query.refId}`;
    for (const name of query.expr.match(/\bsagamesh_\w+/g) ?? []) assert.ok(APP_METRICS.has(name), `${where}: ${name} is not in contracts' Metrics`);
    const clusterOnly = CLUSTER_ONLY.test(query.expr);
    assert.equal(query.requiresCluster !== undefined, clusterOnly, `${where}: ${clusterOnly ? 'uses cluster-only metrics but is not marked' : 'is marked but uses no cluster-only metric'}`);
    if (!clusterOnly) {
      const names = query.expr.match(/\b[a-z_][a-z0-9_]*(?=\{)/g) ?? [];
      for (const n of names) assert.ok(APP_METRICS.has(n) || EVERYWHERE.has(n), `${where}: unexpected metric ${n}`);
    }
  }
  const marked = Object.values(built).flatMap((d) => panels(d)).filter((p) => CLUSTER_MARKER.test(p.description ?? ''));
  assert.ok(marked.length >= 4, 'the Linkerd and HPA panels are marked');
});

test('template variables: every query substitutes fully, $1 back-references stay', () => {
  for (const query of Object.values(built).flatMap((d) => panelQueries(d))) {
    const expr = substituteVariables(query.expr);
    assert.doesNotMatch(expr.replace(/\$\d+/g, ''), /\$/, `${query.panel}: ${expr}`);
  }
  assert.equal(substituteVariables('rate(x{a=~"$service"}[$__rate_interval]) / ${__range}'), 'rate(x{a=~".*"}[30s]) / 5m');
  assert.equal(substituteVariables('label_replace(x, "s", "$1", "pod", "(.+)")'), 'label_replace(x, "s", "$1", "pod", "(.+)")');
  assert.throws(() => substituteVariables('x{a="$nope"}'), /\$nope/);
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(DEFAULT_VARIABLES)), fc.string({ unit: 'grapheme-ascii' }).filter((s) => !s.includes('$')), (name, text) => {
      assert.equal(substituteVariables(`${text}$${name}`), `${text}${DEFAULT_VARIABLES[name]}`);
      assert.equal(substituteVariables(`\${${name}}${text}`), `${DEFAULT_VARIABLES[name]}${text}`);
    }),
  );
});
