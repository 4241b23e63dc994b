import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

/** KEY=value lines (tools/versions.env, charts/versions.env): the same subset sh and make read. */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n').forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = /^([A-Z][A-Z0-9_]*)=(\S+)$/.exec(t);
    if (!m) throw new Error(`${file}:${i + 1}: not KEY=value: ${line}`);
    out[m[1]!] = m[2]!;
  });
  return out;
}

/** The pinned charts: `<CHART>_CHART_VERSION` → { chart: 'kube-prometheus-stack', version }. */
export function pinnedCharts(): { chart: string; version: string; key: string }[] {
  return Object.entries(readEnvFile('charts/versions.env'))
    .filter(([k]) => k.endsWith('_CHART_VERSION'))
    .map(([key, version]) => ({ key, version, chart: key.slice(0, -'_CHART_VERSION'.length).toLowerCase().replaceAll('_', '-') }));
}
