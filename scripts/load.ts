/**
 * `make load`: drives the gateway with POST /api/orders at a rate that rises to a peak, holds it and falls
 * back, for a bounded time, so the HPAs scale the services out (and, minutes later, back in). Live, once a
 * second: the offered rate, requests sent and answered, errors, p50/p99 — plus, when a cluster answers
 * kubectl, each HPA's current→desired replicas and CPU, at every step and every 5 s. Then it waits (bounded)
 * for the orders to end and prints a summary: sent, accepted, errors by kind, orders still pending, latency,
 * peak replicas per HPA. Run with --help for the flags.
 *
 * The sender is open-loop: request i of a step goes out at i/rate s, whether or not earlier ones were
 * answered, and every request is counted when it is sent and again when it ends (answer, error or
 * timeout); the run waits for the last one, so sent = accepted + errors, exactly.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { KEEP_ALIVE } from '@sagamesh/runtime';
import { toolPath } from './lib/tools.ts';

export const LOAD_LIMITS = { maxRate: 2000, maxDurationS: 600, maxSettleS: 600, sockets: 200, requestTimeoutMs: 10_000 } as const;
/**
 * 40 orders/s at the peak, held for half of 120 s: on a 2-core kind cluster that drives gateway, orders and the
 * orchestrator past their HPAs' CPU targets, long enough for metrics-server and the HPA to act, and stays inside
 * what the 3-node cluster on 2 cores can finish (from about 60/s the engine falls behind and sagas time out).
 */
export const LOAD_DEFAULTS = { url: 'http://localhost:8080', rate: 40, durationS: 120, settleS: 60, kubeContext: 'kind-sagamesh', namespace: 'sagamesh' } as const;

const FLAGS: [string, string, string][] = [
  ['--url URL', 'the gateway (loopback or a *.svc name only)', LOAD_DEFAULTS.url],
  ['--rate N', `peak requests per second, 1-${LOAD_LIMITS.maxRate}`, String(LOAD_DEFAULTS.rate)],
  ['--duration S', `seconds of load, 1-${LOAD_LIMITS.maxDurationS}`, String(LOAD_DEFAULTS.durationS)],
  ['--settle S', `seconds to wait for pending orders after, 0-${LOAD_LIMITS.maxSettleS}`, String(LOAD_DEFAULTS.settleS)],
  ['--api-key KEY', 'the API key of the orders', 'the dev key'],
  ['--api-key-file FILE', 'read the API key from FILE (make up writes .dev/cluster/api-key)', ''],
  ['--admin-key KEY', 'the admin key of GET /admin/audit (pending orders)', 'the API key'],
  ['--admin-key-file FILE', 'read the admin key from FILE (make up writes .dev/cluster/admin-key)', ''],
  ['--kube-context CTX', 'kubectl context of the HPAs', LOAD_DEFAULTS.kubeContext],
  ['--namespace NS', 'namespace of the HPAs', LOAD_DEFAULTS.namespace],
  ['-h, --help', 'this text', ''],
];

export const USAGE = `usage: node scripts/load.ts [flags]     (make load URL= RATE= DURATION= API_KEY= ADMIN_KEY=)

Sends POST /api/orders to the gateway at a rate that rises to --rate, holds it for about half of
--duration and falls back; prints progress every second (and the HPAs' replicas when kubectl reaches the
cluster), waits up to --settle seconds for the orders to end, then prints a summary.

${FLAGS.map(([flag, what, dflt]) => `  ${flag.padEnd(20)} ${dflt ? `${what.padEnd(48)} default ${dflt}` : what}`).join('\n')}`;

export interface LoadOptions {
  readonly url: URL;
  /** Peak offered rate, requests/s. */
  readonly rate: number;
  readonly durationS: number;
  /** How long to wait after the load for pending orders to end (0: do not wait). */
  readonly settleS: number;
  readonly apiKey: string;
  /** The admin key of GET /admin/audit (how many orders are still pending): a customer key gets a 403 there. */
  readonly adminKey: string;
  readonly kubeContext: string;
  readonly namespace: string;
}

export class LoadArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadArgsError';
  }
}

export const wantsHelp = (argv: readonly string[]): boolean => argv.includes('--help') || argv.includes('-h');

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

function boundedInt(flag: string, raw: string | undefined, min: number, max: number, what: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new LoadArgsError(`--${flag} ${raw} must be an integer ${min}–${max} (${what})`);
  return n;
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
        settle: { type: 'string', default: String(LOAD_DEFAULTS.settleS) },
        'api-key': { type: 'string' },
        'api-key-file': { type: 'string' },
        'admin-key': { type: 'string' },
        'admin-key-file': { type: 'string' },
        'kube-context': { type: 'string', default: LOAD_DEFAULTS.kubeContext },
        namespace: { type: 'string', default: LOAD_DEFAULTS.namespace },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new LoadArgsError(`${(err as Error).message}; flags: --url --rate --duration --settle --api-key --api-key-file --admin-key --admin-key-file --kube-context --namespace (--help)`);
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
  const rate = boundedInt('rate', values.rate, 1, LOAD_LIMITS.maxRate, 'peak requests per second');
  const durationS = boundedInt('duration', values.duration, 1, LOAD_LIMITS.maxDurationS, 'seconds');
  const settleS = boundedInt('settle', values.settle, 0, LOAD_LIMITS.maxSettleS, 'seconds');
  const key = (what: string, flag: 'api-key' | 'admin-key', dflt: string): string => {
    const file = values[`${flag}-file`];
    if (values[flag] && file) throw new LoadArgsError(`give --${flag} or --${flag}-file, not both`);
    const k = file ? readKeyFile(file).trim() : (values[flag] ?? dflt);
    if (!k) throw new LoadArgsError(`the ${what} is empty${file ? ` (${file})` : ''}`);
    return k;
  };
  const apiKey = key('API key', 'api-key', DEV_API_KEY);
  const adminKey = key('admin key', 'admin-key', apiKey);
  return { url, rate, durationS, settleS, apiKey, adminKey, kubeContext: values['kube-context']!, namespace: values.namespace! };
}

export interface Step {
  readonly rate: number;
  readonly seconds: number;
}

/**
 * A staircase of up to 12 steps over exactly `durationS` seconds: the first quarter of the steps climbs
 * to `peak`, the middle half holds it (the HPA needs a sustained load to act on), the last quarter falls
 * back symmetrically. Never below 1/s.
 */
export function rampSchedule(peak: number, durationS: number): Step[] {
  const n = Math.max(1, Math.min(durationS, 12));
  const climb = Math.floor(n / 4);
  const base = Math.floor(durationS / n);
  let extra = durationS - base * n;
  const steps: Step[] = [];
  for (let i = 0; i < n; i++) {
    const fromEdge = Math.min(i, n - 1 - i);
    const level = fromEdge < climb ? (fromEdge + 1) / (climb + 1) : 1;
    const seconds = base + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    steps.push({ rate: Math.max(1, Math.round(peak * level)), seconds });
  }
  return steps;
}

/** How many requests a step has sent by `elapsedMs` into it: request i goes out at i/rate s. */
export function dueBy(step: Step, elapsedMs: number): number {
  return Math.min(step.rate * step.seconds, Math.max(0, Math.ceil((elapsedMs / 1000) * step.rate)));
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

/** First and peak replicas per HPA, over every poll. */
export class ReplicaPeaks {
  readonly #first = new Map<string, number>();
  readonly #peak = new Map<string, number>();

  observe(hpas: readonly HpaStatus[]): void {
    for (const h of hpas) {
      if (!this.#first.has(h.name)) this.#first.set(h.name, h.current);
      this.#peak.set(h.name, Math.max(this.#peak.get(h.name) ?? 0, h.current));
    }
  }

  /** `gateway 1→3` per HPA: replicas when first seen → the most seen. */
  entries(): [string, string][] {
    return [...this.#peak].map(([name, peak]) => [name, `${this.#first.get(name)}→${peak}`]);
  }
}

const ms = (v: number | undefined) => (v === undefined ? '—' : `${Math.round(v)}ms`);

/**
 * Every request, counted twice: when it is sent and when it ends. `sent = accepted + errors + inFlight`
 * at every instant; errors by kind: `HTTP <status>` for an answer other than 202, `timeout`, or the
 * transport error's code.
 */
export class Tally {
  sent = 0;
  accepted = 0;
  errors = 0;
  readonly byKind = new Map<string, number>();
  readonly latenciesMs: number[] = [];

  get inFlight(): number {
    return this.sent - this.accepted - this.errors;
  }

  get ended(): number {
    return this.accepted + this.errors;
  }

  onSent(): void {
    this.sent++;
  }

  /** A request ended: `status` when answered (202 = accepted), else the error kind. */
  onEnded(outcome: { status: number } | { error: string }, latencyMs: number): void {
    const kind = 'status' in outcome ? (outcome.status === 202 ? undefined : `HTTP ${outcome.status}`) : outcome.error;
    if (kind === undefined) this.accepted++;
    else {
      this.errors++;
      this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    }
    this.latenciesMs.push(latencyMs);
  }
}

export const formatKinds = (byKind: ReadonlyMap<string, number>): string =>
  [...byKind].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ');

export function progressLine(elapsedS: number, offered: number, window: Tally, total: Tally, hpas: string): string {
  const sorted = [...window.latenciesMs].sort((a, b) => a - b);
  const pad = (v: number, w = 4) => String(v).padStart(w);
  return `[${pad(elapsedS)}s] offered ${pad(offered)}/s  sent ${pad(window.sent)}  answered ${pad(window.ended)}  errors ${pad(window.errors, 3)} (total ${total.errors})  in flight ${pad(total.inFlight)}  p50 ${ms(percentile(sorted, 50)).padStart(6)}  p99 ${ms(percentile(sorted, 99)).padStart(6)}${hpas ? `  | hpa ${hpas}` : ''}`;
}

export interface Summary {
  readonly sent: number;
  readonly accepted: number;
  readonly errors: number;
  readonly byKind: ReadonlyMap<string, number>;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly peakOffered: number;
  /** Most requests answered in one second. */
  readonly peakAnswered: number;
  /** Orders still PENDING at the end (from /admin/audit), or why that is unknown. */
  readonly pending: number | string;
  /** Per HPA: replicas when first seen → peak. */
  readonly replicas: readonly [string, string][];
}

export function summaryTable(s: Summary): string {
  const rows: [string, string][] = [
    ['requests sent', String(s.sent)],
    ['accepted (202)', String(s.accepted)],
    ['errors', `${s.errors}${s.byKind.size ? ` (${formatKinds(s.byKind)})` : ''}`],
    ['orders pending', typeof s.pending === 'number' ? String(s.pending) : `unknown: ${s.pending}`],
    ['p50 latency', ms(s.p50Ms)],
    ['p99 latency', ms(s.p99Ms)],
    ['peak offered', `${s.peakOffered}/s`],
    ['peak answered', `${s.peakAnswered}/s`],
    ['peak replicas', s.replicas.length ? s.replicas.map(([k, v]) => `${k} ${v}`).join(', ') : 'no HPA seen'],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const line = `+${'-'.repeat(w + 2)}+${'-'.repeat(Math.max(...rows.map(([, v]) => v.length)) + 2)}+`;
  return [line, ...rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v.padEnd(line.length - w - 7)} |`), line].join('\n');
}

const ORDER_BODY = JSON.stringify({ customerId: 'load-1', items: [{ sku: 'sku-1', quantity: 1 }] });

export interface LoadResult {
  readonly total: Tally;
  readonly steps: readonly Step[];
  readonly peakAnswered: number;
}

/**
 * Runs the staircase against the gateway and waits for every request it sent to end (each is bounded by
 * the request timeout). `log` gets the live lines; `hpas` polls the HPAs (at each step and every 5 s).
 */
export async function runLoad(
  o: Pick<LoadOptions, 'url' | 'rate' | 'durationS' | 'apiKey'> & { requestTimeoutMs?: number },
  log: (line: string) => void,
  hpas?: HpaWatch,
): Promise<LoadResult> {
  const requestTimeoutMs = o.requestTimeoutMs ?? LOAD_LIMITS.requestTimeoutMs;
  const steps = rampSchedule(o.rate, o.durationS);
  const total = new Tally();
  let window = new Tally();
  let offered = 0;
  let peakAnswered = 0;
  const started = performance.now();
  const target = new URL('/api/orders', o.url);
  const request = target.protocol === 'https:' ? https.request : http.request;
  // A timeout below the gateway's keep-alive makes the agent close idle sockets before the server does.
  const agentOptions = { keepAlive: true, maxSockets: LOAD_LIMITS.sockets, timeout: KEEP_ALIVE.clientIdleMs };
  const agent = target.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const headers = { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(ORDER_BODY)) };
  const pending = new Set<Promise<void>>();

  const send = () => {
    total.onSent();
    window.onSent();
    const t0 = performance.now();
    const p = new Promise<void>((resolve) => {
      let done = false;
      const end = (outcome: { status: number } | { error: string }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const latency = performance.now() - t0;
        total.onEnded(outcome, latency);
        window.onEnded(outcome, latency);
        resolve();
      };
      const req = request(target, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => end({ status: res.statusCode ?? 0 }));
        res.on('error', (err: NodeJS.ErrnoException) => end({ error: err.code ?? err.message }));
      });
      const timer = setTimeout(() => {
        end({ error: 'timeout' });
        req.destroy();
      }, requestTimeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => end({ error: err.code ?? err.message }));
      req.end(ORDER_BODY);
    });
    pending.add(p);
    void p.then(() => pending.delete(p));
  };

  const tick = setInterval(() => {
    const elapsed = Math.round((performance.now() - started) / 1000);
    peakAnswered = Math.max(peakAnswered, window.ended);
    log(progressLine(elapsed, offered, window, total, hpas?.text() ?? ''));
    window = new Tally();
    if (elapsed % 5 === 0) hpas?.poll();
  }, 1000);

  try {
    let stepStart = started;
    for (const [i, step] of steps.entries()) {
      offered = step.rate;
      hpas?.poll();
      log(`--- step ${i + 1}/${steps.length}: ${step.rate}/s for ${step.seconds}s${hpas?.text() ? `  | hpa ${hpas.text()}` : ''}`);
      const stepEnd = stepStart + step.seconds * 1000;
      let sent = 0;
      const all = step.rate * step.seconds;
      while (sent < all) {
        const due = dueBy(step, performance.now() - stepStart);
        while (sent < due) (send(), sent++);
        if (sent < all) await sleep(Math.max(1, Math.min(10, stepEnd - performance.now())));
      }
      // The next step starts on the schedule's clock, not after this one's last request (no drift).
      const left = stepEnd - performance.now();
      if (left > 0) await sleep(left);
      stepStart = stepEnd;
    }
    offered = 0;
    if (total.inFlight > 0) log(`load: sent ${total.sent}; waiting for the ${total.inFlight} in flight (at most ${requestTimeoutMs / 1000}s)`);
    await Promise.all(pending);
  } finally {
    clearInterval(tick);
    agent.destroy();
  }
  // The last, partial second.
  peakAnswered = Math.max(peakAnswered, window.ended);
  if (window.sent + window.ended > 0) log(progressLine(Math.round((performance.now() - started) / 1000), offered, window, total, hpas?.text() ?? ''));
  return { total, steps, peakAnswered };
}

/** The HPAs, polled in the background (one poll at a time); the latest text and the peaks. */
export interface HpaWatch {
  poll(): void;
  text(): string;
  readonly peaks: ReplicaPeaks;
}

export function watchHpas(fetchHpas: () => Promise<HpaStatus[] | undefined>): HpaWatch {
  let polling = false;
  let latest = '';
  const peaks = new ReplicaPeaks();
  return {
    peaks,
    text: () => latest,
    poll() {
      if (polling) return;
      polling = true;
      void fetchHpas()
        .then((list) => {
          if (!list) return;
          latest = formatHpas(list);
          peaks.observe(list);
        })
        .finally(() => (polling = false));
    },
  };
}

/** The HPAs through kubectl (the pinned one when built), or undefined when no cluster answers. */
export function kubectlHpas(o: Pick<LoadOptions, 'kubeContext' | 'namespace'>): () => Promise<HpaStatus[] | undefined> {
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

/** Orders still PENDING, from GET /admin/audit; a string says why it is unknown. */
export async function pendingOrders(o: Pick<LoadOptions, 'url' | 'adminKey'>): Promise<number | string> {
  try {
    const res = await fetch(new URL('/admin/audit', o.url), { headers: { authorization: `Bearer ${o.adminKey}` }, signal: AbortSignal.timeout(5000) });
    if (!res.ok) return `GET /admin/audit answered ${res.status}`;
    const count = ((await res.json()) as { orders?: { pending?: { count?: unknown } } }).orders?.pending?.count;
    return typeof count === 'number' ? count : 'GET /admin/audit has no orders.pending.count';
  } catch (err) {
    return `GET /admin/audit: ${(err as Error).message}`;
  }
}

/** Waits up to `settleS` for no order to be pending, printing progress every 2 s; returns the last count. */
export async function settle(o: Pick<LoadOptions, 'url' | 'adminKey' | 'settleS'>, log: (line: string) => void, hpas?: HpaWatch): Promise<number | string> {
  const deadline = performance.now() + o.settleS * 1000;
  for (;;) {
    const pending = await pendingOrders(o);
    if (typeof pending !== 'number' || pending === 0 || performance.now() >= deadline) return pending;
    hpas?.poll();
    log(`settle: ${pending} orders pending (waiting up to ${Math.ceil((deadline - performance.now()) / 1000)}s more)${hpas?.text() ? `  | hpa ${hpas.text()}` : ''}`);
    await sleep(Math.min(2000, Math.max(0, deadline - performance.now())));
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    console.log(USAGE);
    return;
  }
  let options: LoadOptions;
  try {
    options = parseLoadArgs(argv);
  } catch (err) {
    if (err instanceof LoadArgsError) {
      console.error(`load: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const fetchHpas = kubectlHpas(options);
  const first = await fetchHpas();
  const hpas = first ? watchHpas(fetchHpas) : undefined;
  hpas?.peaks.observe(first!);
  const steps = rampSchedule(options.rate, options.durationS);
  console.log(`load: POST ${new URL('/api/orders', options.url)} for ${options.durationS}s, rate ${steps.map((s) => s.rate).join('→')}/s (${steps.length} steps, ${steps.reduce((n, s) => n + s.rate * s.seconds, 0)} requests)`);
  console.log(first ? `load: HPAs in ${options.kubeContext}/${options.namespace}: ${formatHpas(first) || 'none'}` : `load: no cluster answers kubectl (context ${options.kubeContext}): HPA column off`);
  const result = await runLoad(options, (l) => console.log(l), hpas);
  const pending = options.settleS > 0 ? await settle(options, (l) => console.log(l), hpas) : await pendingOrders(options);
  const sorted = result.total.latenciesMs.sort((a, b) => a - b);
  const summary: Summary = {
    sent: result.total.sent,
    accepted: result.total.accepted,
    errors: result.total.errors,
    byKind: result.total.byKind,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    peakOffered: Math.max(...result.steps.map((s) => s.rate)),
    peakAnswered: result.peakAnswered,
    pending,
    replicas: hpas?.peaks.entries() ?? [],
  };
  console.log(`\n${summaryTable(summary)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
