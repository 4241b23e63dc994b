/**
 * `make load`: drives the gateway with POST /api/orders at a rate that rises to a peak and falls back,
 * for a bounded time, so the HPA scales the services out and back in. Live, once a second: the offered
 * and achieved rate, errors and p50/p99 — plus, when a cluster answers kubectl, each HPA's current/desired
 * replicas and CPU. Ends with a summary table.
 *
 *   node scripts/load.ts [--url http://localhost:8080] [--rate 30] [--duration 90] [--api-key K | --api-key-file F]
 *
 * autocannon does the sending. It holds one fixed rate per run (overallRate) and has no ramp, so the
 * ramp is a staircase of consecutive autocannon runs, each at its step's rate; the progress and summary
 * are computed here from its per-response events across all steps.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolPath } from './lib/tools.ts';
import { parseArgs, promisify } from 'node:util';
import autocannon from 'autocannon';
import { DEV_API_KEY } from '@sagamesh/contracts';


export const LOAD_LIMITS = { maxRate: 2000, maxDurationS: 600, maxConnections: 100 } as const;
export const LOAD_DEFAULTS = { url: 'http://localhost:8080', rate: 30, durationS: 90, kubeContext: 'kind-sagamesh', namespace: 'sagamesh' } as const;

export interface LoadOptions {
  readonly url: URL;
  /** Peak offered rate, requests/s. */
  readonly rate: number;
  readonly durationS: number;
  readonly apiKey: string;
  readonly kubeContext: string;
  readonly namespace: string;
}

export class LoadArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadArgsError';
  }
}

/**
 * Only a loopback address or a cluster-internal Service name may be loaded: this script is for the
 * platform you run, never for someone else's host.
 */
export function isAllowedTarget(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return /^[a-z0-9-]+(\.[a-z0-9-]+)?\.svc(\.cluster\.local)?$/.test(host);
}

/** Parses the command line (pure: the API key file is read by the caller-supplied reader). */
export function parseLoadArgs(argv: readonly string[], readKeyFile: (file: string) => string = (f) => readFileSync(f, 'utf8')): LoadOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string', default: LOAD_DEFAULTS.url },
        rate: { type: 'string', default: String(LOAD_DEFAULTS.rate) },
        duration: { type: 'string', default: String(LOAD_DEFAULTS.durationS) },
        'api-key': { type: 'string' },
        'api-key-file': { type: 'string' },
        'kube-context': { type: 'string', default: LOAD_DEFAULTS.kubeContext },
        namespace: { type: 'string', default: LOAD_DEFAULTS.namespace },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new LoadArgsError(`${(err as Error).message}; flags: --url --rate --duration --api-key --api-key-file --kube-context --namespace`);
  }
  let url: URL;
  try {
    url = new URL(values.url!);
  } catch {
    throw new LoadArgsError(`--url "${values.url}" is not a URL; e.g. --url http://localhost:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LoadArgsError(`--url must be http(s), got ${url.protocol}`);
  if (!isAllowedTarget(url)) {
    throw new LoadArgsError(`--url ${url.host} is neither a loopback address nor a cluster Service name (*.svc[.cluster.local]): load only the platform you run`);
  }
  const rate = Number(values.rate);
  if (!Number.isInteger(rate) || rate < 1 || rate > LOAD_LIMITS.maxRate) throw new LoadArgsError(`--rate ${values.rate} must be an integer 1–${LOAD_LIMITS.maxRate} (peak requests per second)`);
  const durationS = Number(values.duration);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > LOAD_LIMITS.maxDurationS) throw new LoadArgsError(`--duration ${values.duration} must be an integer 1–${LOAD_LIMITS.maxDurationS} (seconds)`);
  if (values['api-key'] && values['api-key-file']) throw new LoadArgsError('give --api-key or --api-key-file, not both');
  const apiKey = values['api-key-file'] ? readKeyFile(values['api-key-file']).trim() : (values['api-key'] ?? DEV_API_KEY);
  if (!apiKey) throw new LoadArgsError(`the API key is empty${values['api-key-file'] ? ` (${values['api-key-file']})` : ''}`);
  return { url, rate, durationS, apiKey, kubeContext: values['kube-context']!, namespace: values.namespace! };
}

export interface Step {
  readonly rate: number;
  readonly seconds: number;
}

/**
 * A staircase that rises to `peak` and falls back, `durationS` seconds in all: about ten steps (at
 * least 1 s each), rates symmetric around the middle, never below 1/s.
 */
export function rampSchedule(peak: number, durationS: number): Step[] {
  const n = Math.max(1, Math.min(durationS, 10));
  const base = Math.floor(durationS / n);
  let extra = durationS - base * n;
  const steps: Step[] = [];
  for (let i = 0; i < n; i++) {
    // Triangle: 1/h, 2/h, …, peak, …, 1/h of the peak with h = ceil(n/2).
    const h = Math.ceil(n / 2);
    const level = n === 1 ? 1 : Math.min(i + 1, n - i) / h;
    const seconds = base + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    steps.push({ rate: Math.max(1, Math.round(peak * level)), seconds });
  }
  return steps;
}

export function percentile(sortedMs: readonly number[], p: number): number | undefined {
  if (sortedMs.length === 0) return undefined;
  const i = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[i];
}

export interface HpaStatus {
  readonly name: string;
  readonly current: number;
  readonly desired: number;
  readonly cpuPercent?: number;
}

/** The HPAs' replicas and CPU from `kubectl get hpa -o json`. */
export function parseHpas(json: string): HpaStatus[] {
  const list = JSON.parse(json) as { items?: any[] };
  return (list.items ?? []).map((h) => {
    const metric = (h.status?.currentMetrics ?? [])[0];
    const cpu = metric?.containerResource?.current?.averageUtilization ?? metric?.resource?.current?.averageUtilization;
    return { name: h.metadata.name, current: h.status?.currentReplicas ?? 0, desired: h.status?.desiredReplicas ?? 0, ...(cpu === undefined ? {} : { cpuPercent: cpu }) };
  });
}

export function formatHpas(hpas: readonly HpaStatus[]): string {
  return hpas.map((h) => `${h.name} ${h.current}→${h.desired}${h.cpuPercent === undefined ? '' : ` ${h.cpuPercent}%`}`).join('  ');
}

const ms = (v: number | undefined) => (v === undefined ? '—' : `${Math.round(v)}ms`);

export interface Counters {
  sent: number;
  ok: number;
  errors: number;
  /** Non-2xx responses by status code, and transport errors by message. */
  byStatus: Map<string, number>;
  latenciesMs: number[];
}

export function newCounters(): Counters {
  return { sent: 0, ok: 0, errors: 0, byStatus: new Map(), latenciesMs: [] };
}

export function progressLine(elapsedS: number, offered: number, window: Counters, total: Counters, hpas: string): string {
  const sorted = [...window.latenciesMs].sort((a, b) => a - b);
  const achieved = window.ok + window.errors;
  return `[${String(elapsedS).padStart(4)}s] offered ${String(offered).padStart(4)}/s  achieved ${String(achieved).padStart(4)}/s  errors ${String(window.errors).padStart(3)} (total ${total.errors})  p50 ${ms(percentile(sorted, 50)).padStart(6)}  p99 ${ms(percentile(sorted, 99)).padStart(6)}${hpas ? `  | hpa ${hpas}` : ''}`;
}

export interface Summary {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly peakOffered: number;
  readonly peakAchieved: number;
  readonly byStatus: ReadonlyMap<string, number>;
  readonly maxReplicas: ReadonlyMap<string, number>;
}

export function summaryTable(s: Summary): string {
  const rows: [string, string][] = [
    ['requests sent', String(s.sent)],
    ['2xx', String(s.ok)],
    ['errors', `${s.errors}${s.byStatus.size ? ` (${[...s.byStatus].map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`],
    ['p50 latency', ms(s.p50Ms)],
    ['p99 latency', ms(s.p99Ms)],
    ['peak offered', `${s.peakOffered}/s`],
    ['peak achieved', `${s.peakAchieved}/s`],
  ];
  if (s.maxReplicas.size) rows.push(['max replicas', [...s.maxReplicas].map(([k, v]) => `${k} ${v}`).join(', ')]);
  const w = Math.max(...rows.map(([k]) => k.length));
  const line = `+${'-'.repeat(w + 2)}+${'-'.repeat(Math.max(...rows.map(([, v]) => v.length)) + 2)}+`;
  return [line, ...rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v.padEnd(line.length - w - 7)} |`), line].join('\n');
}

const ORDER_BODY = JSON.stringify({ customerId: 'load-1', items: [{ sku: 'sku-1', quantity: 1 }] });

/** Runs the staircase against the gateway; `log` gets the live lines. The I/O edge. */
export async function runLoad(o: LoadOptions, log: (line: string) => void, pollHpas?: () => Promise<HpaStatus[] | undefined>): Promise<Summary> {
  const steps = rampSchedule(o.rate, o.durationS);
  const total = newCounters();
  let window = newCounters();
  let offered = 0;
  let peakAchieved = 0;
  let hpaText = '';
  const maxReplicas = new Map<string, number>();
  const started = Date.now();
  const target = new URL('/api/orders', o.url).toString();

  const record = (c: Counters, status: string | undefined, latencyMs: number | undefined) => {
    c.sent++;
    if (status === undefined || !/^2\d\d$/.test(status)) {
      c.errors++;
      const key = status ?? 'transport';
      c.byStatus.set(key, (c.byStatus.get(key) ?? 0) + 1);
    } else c.ok++;
    if (latencyMs !== undefined) c.latenciesMs.push(latencyMs);
  };

  let polling = false;
  const tick = setInterval(() => {
    const elapsed = Math.round((Date.now() - started) / 1000);
    peakAchieved = Math.max(peakAchieved, window.ok + window.errors);
    log(progressLine(elapsed, offered, window, total, hpaText));
    window = newCounters();
    if (pollHpas && !polling && elapsed % 5 === 0) {
      polling = true;
      void pollHpas().then((hpas) => {
        if (hpas) {
          hpaText = formatHpas(hpas);
          for (const h of hpas) maxReplicas.set(h.name, Math.max(maxReplicas.get(h.name) ?? 0, h.current));
        }
      }).finally(() => (polling = false));
    }
  }, 1000);

  try {
    for (const step of steps) {
      offered = step.rate;
      await new Promise<void>((resolve, reject) => {
        const instance = autocannon(
          {
            url: target,
            method: 'POST',
            headers: { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' },
            body: ORDER_BODY,
            connections: Math.min(step.rate, LOAD_LIMITS.maxConnections),
            overallRate: step.rate,
            duration: step.seconds,
            timeout: 10,
          },
          (err) => (err ? reject(err) : resolve()),
        );
        instance.on('response', (_client, statusCode, _bytes, responseTime) => {
          record(total, String(statusCode), responseTime);
          record(window, String(statusCode), responseTime);
        });
        instance.on('reqError', () => {
          record(total, undefined, undefined);
          record(window, undefined, undefined);
        });
      });
    }
  } finally {
    clearInterval(tick);
  }
  const sorted = total.latenciesMs.sort((a, b) => a - b);
  return {
    sent: total.sent,
    ok: total.ok,
    errors: total.errors,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    peakOffered: Math.max(...steps.map((s) => s.rate)),
    peakAchieved,
    byStatus: total.byStatus,
    maxReplicas,
  };
}

/** The HPAs through kubectl (the pinned one when built), or undefined when no cluster answers. */
export function kubectlHpaPoller(o: LoadOptions): () => Promise<HpaStatus[] | undefined> {
  const pinned = toolPath('kubectl');
  const kubectl = existsSync(pinned) ? pinned : 'kubectl';
  const run = promisify(execFile);
  return async () => {
    try {
      const { stdout } = await run(kubectl, ['--context', o.kubeContext, '-n', o.namespace, 'get', 'hpa', '-o', 'json', '--request-timeout=2s'], { timeout: 4000 });
      return parseHpas(stdout);
    } catch {
      return undefined;
    }
  };
}

async function main(): Promise<void> {
  let options: LoadOptions;
  try {
    options = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof LoadArgsError) {
      console.error(`load: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const poll = kubectlHpaPoller(options);
  const first = await poll();
  const steps = rampSchedule(options.rate, options.durationS);
  console.log(`load: POST ${new URL('/api/orders', options.url)} for ${options.durationS}s, rate ${steps.map((s) => s.rate).join('→')}/s (${steps.length} steps)`);
  console.log(first ? `load: HPAs in ${options.kubeContext}/${options.namespace}: ${formatHpas(first) || 'none'}` : `load: no cluster answers kubectl (context ${options.kubeContext}): HPA column off`);
  const summary = await runLoad(options, (l) => console.log(l), first ? poll : undefined);
  console.log(`\n${summaryTable(summary)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
