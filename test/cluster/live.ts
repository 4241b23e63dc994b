/**
 * What the cluster tier (`*.cluster.test.ts`, `make test-cluster`) shares: kubectl on the live kind cluster that
 * `make up OFFLINE=1` built, the gateway on http://localhost:8080 with the cluster's API keys, the books, and phase
 * lines with elapsed time. Nothing here starts a cluster: scripts/test-cluster.sh does, before the tier.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pRetry from 'p-retry';
import type { Audit } from '@sagamesh/contracts';
import { GatewayClient, booksViolations } from '../../scripts/lib/client.ts';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);
export const CONTEXT = process.env.CLUSTER_CONTEXT ?? 'kind-sagamesh';
export const NAMESPACE = 'sagamesh';
export const GATEWAY_URL = 'http://localhost:8080';

const t0 = Date.now();
/** A phase line with the tier's elapsed time, on stdout so the CI log shows where the time goes. */
export function phase(what: string): void {
  console.log(`[cluster +${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${what}`);
}

export async function kubectl(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await run(toolPath('kubectl'), ['--context', CONTEXT, ...args], {
    cwd: REPO_ROOT,
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** The environment the docker CLI needs to reach the engine `make up` used (scripts/cluster/docker.sh env). */
export function dockerEnv(): NodeJS.ProcessEnv {
  const res = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/cluster/docker.sh'), 'env'], { encoding: 'utf8', timeout: 30_000 });
  if (res.status !== 0) throw new Error(`no Docker engine answers: ${res.stderr}`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const m of res.stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]!] = m[2]!.replace('$PATH', process.env.PATH ?? '');
  return env;
}

export async function kubectlJson<T = any>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/** The cluster's customer key (`make up` writes it): orders. */
export function apiKey(): string {
  return readFileSync(path.join(REPO_ROOT, '.dev/cluster/api-key'), 'utf8').trim();
}

/** The cluster's admin key (`make up` writes it): /admin/audit, /admin/faults. */
export function adminKey(): string {
  return readFileSync(path.join(REPO_ROOT, '.dev/cluster/admin-key'), 'utf8').trim();
}

export function gateway(): GatewayClient {
  return new GatewayClient(GATEWAY_URL, apiKey(), adminKey());
}

export async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until no order is PENDING, then returns the books and what is wrong with them (empty when they balance). */
/**
 * Waits until every order has ended and the books balance: projections (orders' status, inventory's reserved → sold)
 * follow the sagas asynchronously, and after a pod or a NATS server went away they may catch up only on redelivery.
 * Returns the last audit and what still does not balance when `timeoutMs` passed (the caller asserts it is empty).
 */
export async function booksAtRest(timeoutMs = 180_000): Promise<{ audit: Audit; violations: string[] }> {
  const client = gateway();
  const started = Date.now();
  let last: { audit: Audit; violations: string[] } | undefined;
  try {
    await eventually('every order ended and the books balance', timeoutMs, async () => {
      const audit = await client.audit();
      const pending = audit.orders.pending.count;
      last = { audit, violations: pending === 0 ? booksViolations(audit) : [`${pending} order(s) still PENDING`] };
      return last.violations.length === 0 ? last : undefined;
    }, 2000);
    phase(`books at rest after ${Math.round((Date.now() - started) / 1000)}s`);
  } catch (err) {
    if (!last) throw err;
  }
  return last!;
}

export interface HpaReplicas {
  readonly name: string;
  readonly current: number;
  readonly desired: number;
  readonly min: number;
}

export async function hpas(): Promise<HpaReplicas[]> {
  const list = await kubectlJson<{ items: any[] }>(['-n', NAMESPACE, 'get', 'hpa']);
  return list.items.map((h) => ({
    name: h.metadata.name,
    current: h.status?.currentReplicas ?? 0,
    desired: h.status?.desiredReplicas ?? 0,
    min: h.spec.minReplicas ?? 1,
  }));
}

/** Runs `make load` (scripts/load.ts) against the cluster's gateway; resolves with its output, rejects on a non-zero exit. */
export async function makeLoad(args: readonly string[], timeoutMs: number): Promise<string> {
  const { stdout } = await run('make', ['--no-print-directory', 'load', ...args], {
    cwd: REPO_ROOT,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PATH: `${path.join(REPO_ROOT, '.tools/bin')}:${process.env.PATH}` },
  });
  return stdout;
}

/** The Ready pods of a workload, by label app.kubernetes.io/name, as name → uid (a StatefulSet's new pod keeps the name). */
export async function readyPods(app: string, namespace = NAMESPACE): Promise<Map<string, string>> {
  const list = await kubectlJson<{ items: any[] }>(['-n', namespace, 'get', 'pods', '-l', `app.kubernetes.io/name=${app}`]);
  return new Map(
    list.items
      .filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
      .map((p) => [p.metadata.name, p.metadata.uid]),
  );
}

/** `kubectl port-forward` to a Service on a free local port, until `stop()`. */
export async function portForward(namespace: string, target: string, remotePort: number): Promise<{ url: string; stop: () => void }> {
  const { freePort } = await import('@sagamesh/testing');
  const port = await freePort();
  const child = spawn(toolPath('kubectl'), ['--context', CONTEXT, '-n', namespace, 'port-forward', target, `${port}:${remotePort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('Forwarding from') && resolve());
    child.on('exit', (code) => reject(new Error(`kubectl port-forward ${target} exited ${code}: ${err}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

export interface SteadyLoad {
  /** Ids of the orders the gateway accepted (202). */
  readonly accepted: string[];
  /** Every request that did not get its expected answer, with what it got. */
  readonly errors: string[];
  /** Reads that came back without their saga and without saying they are degraded. */
  readonly silentDrops: string[];
  readonly reads: number;
  /** Requests sent again because their connection closed before any answer (never a request that got one). */
  readonly resent: number;
}

/**
 * A connection that closed before any answer (a pod going away closes its keep-alive sockets; a request can cross
 * the close): what HTTP lets a client send again when the request is idempotent. Any answer, 5xx included, is final.
 */
const isConnectionLost = (err: unknown) => err instanceof TypeError && /fetch failed/.test(err.message);

/**
 * Places orders at `rate`/s and reads back recent ones, until `until` settles (bounded by `maxMs` and `rate × maxMs`
 * orders). A read of an ended order that lacks its saga must say it is degraded (`"degraded": ["saga"]`): never drop
 * data silently.
 */
export async function steadyLoad(rate: number, until: Promise<unknown>, maxMs = 300_000): Promise<SteadyLoad> {
  const client = gateway();
  const out = { accepted: [] as string[], errors: [] as string[], silentDrops: [] as string[], reads: 0, resent: 0 };
  // Every POST carries an Idempotency-Key, so sending it again returns the order the first attempt placed.
  const idempotent = <T>(send: () => Promise<T>) =>
    pRetry(send, { retries: 2, minTimeout: 200, shouldRetry: ({ error }) => isConnectionLost(error), onFailedAttempt: () => void out.resent++ });
  let done = false;
  until.finally(() => (done = true)).catch(() => {});
  const deadline = Date.now() + maxMs;
  const inFlight = new Set<Promise<void>>();
  let i = 0;
  const t0 = Date.now();
  while (!done && Date.now() < deadline) {
    const n = i++;
    const p = (async () => {
      try {
        const key = `steady-${randomUUID()}`;
        out.accepted.push(await idempotent(() => client.placeOrder({ customerId: `c-steady-${n % 50}`, items: [{ sku: n % 2 ? 'sku-1' : 'sku-2', quantity: 1 }] }, key)));
      } catch (err) {
        out.errors.push(`POST: ${(err as Error).message}`);
      }
      const recent = out.accepted[Math.max(0, out.accepted.length - 1 - (n % 20))];
      if (recent === undefined) return;
      try {
        const view = (await idempotent(() => client.getOrder(recent))) as (Record<string, unknown> & { saga?: unknown }) | undefined;
        out.reads++;
        if (!view) out.errors.push(`GET ${recent}: 404 for an accepted order`);
        // No saga on an order still PENDING can be "no run yet"; on an order that ended it is data missing.
        else if (view.saga === undefined && !view.degraded && view.status !== 'PENDING') out.silentDrops.push(`${recent}: ${JSON.stringify(view)}`);
      } catch (err) {
        out.errors.push(`GET: ${(err as Error).message}`);
      }
    })();
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
    // Paced by the clock, not by the answers: a slow answer must not slow the offered rate.
    const next = t0 + (i * 1000) / rate;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  await Promise.all(inFlight);
  return out;
}
