/** The local Prometheus config (scripts/lib/prometheus.ts) keeps the app's labels, labels each target with its service, loads the rules and is valid for promtool. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { prometheusConfig, RULE_FILES } from '../../scripts/lib/prometheus.ts';
import { ensureTools, toolPath } from '../../scripts/lib/tools.ts';

const targets = [
  { job: 'sagamesh', service: 'gateway', address: '127.0.0.1:8080' },
  { job: 'sagamesh', service: 'orders', address: '127.0.0.1:8081' },
  { job: 'operator', service: 'operator', address: '127.0.0.1:8090' },
];

interface ScrapeConfig {
  job_name: string;
  honor_labels: boolean;
  static_configs: { targets: string[]; labels: Record<string, string> }[];
}

test('one scrape config per job, honor_labels, a service label per target, the rules loaded', () => {
  const cfg = prometheusConfig(targets, { interval: '2s', ruleFiles: [RULE_FILES] }) as { global: Record<string, string>; rule_files: string[]; scrape_configs: ScrapeConfig[] };
  assert.deepEqual(cfg.scrape_configs.map((s) => s.job_name), ['sagamesh', 'operator']);
  for (const s of cfg.scrape_configs) assert.equal(s.honor_labels, true, `${s.job_name}: the app's own labels win (DESIGN "Metrics")`);
  assert.deepEqual(cfg.scrape_configs[0]!.static_configs, [
    { targets: ['127.0.0.1:8080'], labels: { service: 'gateway' } },
    { targets: ['127.0.0.1:8081'], labels: { service: 'orders' } },
  ]);
  assert.equal(cfg.global.scrape_interval, '2s');
  assert.equal(cfg.global.evaluation_interval, '2s');
  assert.deepEqual(cfg.rule_files, [RULE_FILES]);
});

test('promtool check config accepts it, rules included', async () => {
  await ensureTools(['promtool']);
  const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-promcfg-'));
  try {
    const file = path.join(dir, 'prometheus.yml');
    writeFileSync(file, stringify(prometheusConfig(targets, { interval: '5s', ruleFiles: [RULE_FILES] })));
    const res = spawnSync(toolPath('promtool'), ['check', 'config', file], { encoding: 'utf8' });
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
    assert.match(`${res.stdout}${res.stderr}`, /SUCCESS: \d+ rules found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
