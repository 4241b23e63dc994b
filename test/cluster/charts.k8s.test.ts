/** The Prometheus scrape job in the kube-prometheus-stack values, checked by the pinned promtool (.tools/bin). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);
const kps = parse(readFileSync(path.join(REPO_ROOT, 'charts', 'values', 'kube-prometheus-stack.yaml'), 'utf8'));

describe('charts: kube-prometheus-stack scrape configuration', () => {
  it('the Linkerd proxy scrape job is a valid Prometheus configuration (promtool check config)', async (t) => {
    const promtool = toolPath('promtool');
    assert.ok(existsSync(promtool), 'promtool is built by `make tools`');
    const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-promtool-'));
    try {
      const file = path.join(dir, 'prometheus.yml');
      writeFileSync(file, JSON.stringify({ global: { scrape_interval: '15s' }, scrape_configs: kps.prometheus.prometheusSpec.additionalScrapeConfigs }));
      const { stdout } = await run(promtool, ['check', 'config', '--syntax-only', file]);
      t.diagnostic(stdout.trim());
      assert.match(stdout, /SUCCESS/);
      // And a broken relabel action is refused, so this can fail.
      const broken = structuredClone(kps.prometheus.prometheusSpec.additionalScrapeConfigs);
      broken[0].relabel_configs[0].action = 'keepp';
      writeFileSync(file, JSON.stringify({ scrape_configs: broken }));
      await assert.rejects(run(promtool, ['check', 'config', '--syntax-only', file]), /unknown relabel action/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
