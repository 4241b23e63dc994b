/**
 * Every dashboard panel query that is not Linkerd-only returns data from the in-cluster Prometheus (make up OFFLINE=1
 * has no Linkerd, so its proxy metrics cannot exist): the platform's metrics through the pod scrape config,
 * kube-state-metrics for the HPA panels, the kubelets' cAdvisor for container CPU. Runs after the load and fault
 * tiers, so the panels have traffic, sagas, compensations and scaling to show.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { buildDashboards, DEFAULT_VARIABLES, panelQueries, substituteVariables } from '@sagamesh/dashboards';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { hasFiniteSample, queryInstant, queryRange } from '../observability/helpers.ts';
import { eventually, gateway, phase, portForward } from './live.ts';

let prom: { url: string; stop: () => void };
const WINDOW_S = 30 * 60;

before(async () => {
  prom = await portForward('monitoring', 'svc/prometheus', 9090);
});
after(() => prom?.stop());

it('Prometheus scrapes the platform, kube-state-metrics, the kubelets (cAdvisor) and itself, and loaded the rules', async () => {
  phase('dashboards: scrape targets');
  // A little traffic of our own, so the newest scrape has recent requests even when this file runs alone.
  const client = gateway();
  for (let i = 0; i < 5; i++) await client.placeOrder({ customerId: `c-dash-${i}`, items: [{ sku: 'sku-1', quantity: 1 }] });
  const jobs = await eventually('every scrape job has a target up', 120_000, async () => {
    const up = await queryInstant(prom.url, 'max by (job) (up)');
    const byJob = new Map(up.map((s) => [s.metric.job!, Number(s.value![1])]));
    const down = [...byJob].filter(([, v]) => v !== 1).map(([j]) => j);
    return byJob.size >= 4 && down.length === 0 ? [...byJob.keys()] : undefined;
  }, 5000);
  phase(`dashboards: jobs up: ${jobs.join(', ')}`);
  // A Prometheus that just started (the drain before this file may have moved it: its TSDB is an emptyDir) has one
  // scrape per target; the panels' 30 s rates need two scrapes with requests between them. Traffic until they have.
  const p99 = 'histogram_quantile(0.99, sum by (le) (rate(sagamesh_http_request_duration_seconds_bucket{namespace="sagamesh", route!~"/metrics|/livez|/readyz"}[30s])))';
  await eventually('two scrapes with requests between them (the 30 s rates have data)', 120_000, async () => {
    await client.placeOrder({ customerId: 'c-dash-wait', items: [{ sku: 'sku-1', quantity: 1 }] });
    return (await queryInstant(prom.url, p99)).some(hasFiniteSample);
  }, 3000);
  const rules = await (await fetch(`${prom.url}/api/v1/rules`)).json() as { data: { groups: unknown[] } };
  assert.ok(rules.data.groups.length > 0, 'monitoring/rules are loaded');
});

it('every panel query that is not Linkerd-only returns data', async (t) => {
  phase('dashboards: panel queries');
  const end = Date.now();
  const start = end - WINDOW_S * 1000;
  const vars = { ...DEFAULT_VARIABLES, namespace: 'sagamesh', __range: `${WINDOW_S}s` };
  const problems: string[] = [];
  const linkerdOnly: string[] = [];
  let withData = 0;
  for (const name of Object.keys(buildDashboards())) {
    const json = JSON.parse(readFileSync(path.join(REPO_ROOT, 'dashboards', `${name}.json`), 'utf8')) as object;
    for (const q of panelQueries(json)) {
      const where = `${name}.json "${q.panel}" ${q.refId}`;
      const expr = substituteVariables(q.expr, vars);
      let series;
      try {
        series = await queryRange(prom.url, expr, start, end, 30);
      } catch (err) {
        problems.push(`${where}: ${(err as Error).message}`);
        continue;
      }
      if (q.requiresCluster && /linkerd/i.test(q.requiresCluster)) {
        linkerdOnly.push(where);
        continue;
      }
      if (series.some(hasFiniteSample)) withData++;
      else problems.push(`${where}: no data (${series.length} series)\n    ${expr}`);
    }
  }
  t.diagnostic(`${withData} panel queries returned data; Linkerd-only, not checked offline: ${linkerdOnly.join('; ')}`);
  assert.deepEqual(problems, [], `panel queries without data or with errors:\n${problems.join('\n')}`);
  assert.ok(withData > 40, `${withData} queries with data`);
});
