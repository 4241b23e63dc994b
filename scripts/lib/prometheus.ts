/**
 * A local Prometheus (the pinned .tools/bin/prometheus) scraping the platform's processes, with the
 * recording and alerting rules of monitoring/rules/*.yml loaded: used by `make dev MONITORING=1` and the
 * observability tests. Its config and TSDB live in a temporary directory removed by `stop()`.
 * The binary is built without the web UI assets: UI pages answer 500, the HTTP API (/api/v1/…) works.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, PLATFORM_SERVICES, pipeLines, type Platform } from './platform.ts';
import { ensureTools, REPO_ROOT, toolPath } from './tools.ts';

export interface ScrapeTarget {
  /** Prometheus job name (targets of one job share a scrape config). */
  readonly job: string;
  /** Becomes the `service` label of every series scraped from this target. */
  readonly service: string;
  /** host:port serving /metrics. */
  readonly address: string;
}

export interface PrometheusOptions {
  /** Listen port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  readonly targets: readonly ScrapeTarget[];
  /** Receives Prometheus' log lines. Default: dropped. */
  readonly onLog?: (source: string, line: string) => void;
  /** Scrape and rule evaluation interval. @default '2s' */
  readonly interval?: string;
  /** Rule files (globs allowed). @default monitoring/rules/*.yml */
  readonly ruleFiles?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export interface RunningPrometheus {
  /** Base URL, e.g. http://127.0.0.1:9090 (the HTTP API is under /api/v1). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** One `sagamesh` job target per platform service. */
export function platformTargets(platform: Platform): ScrapeTarget[] {
  return PLATFORM_SERVICES.map((s) => ({ job: 'sagamesh', service: s, address: `127.0.0.1:${platform.ports[s]}` }));
}

export const RULE_FILES = path.join(REPO_ROOT, 'monitoring', 'rules', '*.yml');

/** The prometheus.yml for these targets. Pure. */
export function prometheusConfig(targets: readonly ScrapeTarget[], opts: { interval: string; ruleFiles: readonly string[] }): Record<string, unknown> {
  const jobs = Map.groupBy(targets, (t) => t.job);
  return {
    global: { scrape_interval: opts.interval, scrape_timeout: opts.interval, evaluation_interval: opts.interval },
    rule_files: [...opts.ruleFiles],
    scrape_configs: [...jobs].map(([job, ts]) => ({
      job_name: job,
      // The app's own labels (service, route, …) win over the target's (DESIGN "Metrics").
      honor_labels: true,
      metrics_path: '/metrics',
      static_configs: ts.map((t) => ({ targets: [t.address], labels: { service: t.service } })),
    })),
  };
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  await ensureTools(['prometheus']);
  const log = opts.onLog ?? (() => {});
  const port = opts.port === 0 ? await freePort() : opts.port;
  const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringify(prometheusConfig(opts.targets, { interval: opts.interval ?? '2s', ruleFiles: opts.ruleFiles ?? [RULE_FILES] })));

  const child = spawn(
    toolPath('prometheus'),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Its startup chatter would drown `make dev`'s output; problems are warnings or errors.
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const recent: string[] = [];
  const onLine = (l: string) => {
    recent.push(l);
    if (recent.length > 20) recent.shift();
    log('prometheus', l);
  };
  pipeLines(child.stdout, onLine);
  pipeLines(child.stderr, onLine);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`prometheus exited before it was ready; its last lines:\n${recent.join('\n')}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready on ${url} within ${opts.readyTimeoutMs ?? 30_000} ms; its last lines:\n${recent.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port, stop };
}
