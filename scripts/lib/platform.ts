/**
 * Runs the whole platform as local processes on one real nats-server: used by `make dev`,
 * the end-to-end tests, the benchmark and the load test. Supervises the services: a crashed
 * one (crash-after-commit does that on purpose) is restarted with backoff.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DEV_API_KEY, Ports, type ServiceName } from '@sagamesh/contracts';
import { createLogger, provisionPlatform } from '@sagamesh/runtime';
import { freePort, generateNatsUsers, loadOrCreateNatsUsers, natsUserEnv, type NatsCredentials, type NatsUsers, waitFor, writeNatsAuthConfig } from '@sagamesh/testing';
import { buildWorkloads, bundleOf } from './build.ts';
import { ensureJemalloc } from './jemalloc.ts';
import { ensureTools, REPO_ROOT, toolPath } from './tools.ts';

export const PLATFORM_SERVICES = ['inventory', 'payments', 'shipping', 'orchestrator', 'orders', 'notifications', 'gateway'] as const satisfies readonly ServiceName[];
export type PlatformService = (typeof PLATFORM_SERVICES)[number];

/**
 * How a workload's node starts, here and in the image (the Dockerfile's CMD): `sh NODE_LAUNCHER <bundle>` with NODE
 * the node binary and the bundle built by buildWorkloads (scripts/lib/build.ts). Its flags and environment (the memory
 * settings of issue 12) live in that script only.
 */
export const NODE_LAUNCHER = path.join(REPO_ROOT, 'libs', 'runtime', 'src', 'node-service.sh');

/** Spawns a workload (`entry`, relative to the repository) the way its image runs it. */
export function spawnWorkload(entry: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn('/bin/sh', [NODE_LAUNCHER, entry], { cwd: REPO_ROOT, env: { ...env, NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface PlatformOptions {
  /** 'default' uses the documented ports (make dev); 'free' picks free loopback ports (tests). */
  readonly ports?: 'default' | 'free';
  /** The admin key (ADMIN_API_KEYS). Default: the dev key (make dev), a random one with free ports (tests). */
  readonly apiKey?: string;
  /** Receives every log line of every process, already prefixed. Default: dropped. */
  readonly onLog?: (service: string, line: string) => void;
  /** Extra environment per service (e.g. LOG_LEVEL, OTEL settings). */
  readonly env?: Partial<Record<PlatformService | 'all', Record<string, string>>>;
  /** Restart a crashed service (default true). */
  readonly restart?: boolean;
  readonly services?: readonly PlatformService[];
  readonly natsUrl?: string;
  /**
   * Identities on the bus (default true when this platform starts the nats-server): each service connects as its own
   * user with the contracts' permissions, the admin provisions the streams and buckets first, and an unauthenticated
   * client is refused. make dev keeps the passwords in .dev/nats/users.json (git-ignored).
   */
  readonly natsAuth?: boolean;
  readonly readyTimeoutMs?: number;
}

export interface Platform {
  readonly gatewayUrl: string;
  /** An admin key: /admin/* and every order (what the demos, tests and the bench use). */
  readonly apiKey: string;
  /** A customer key: /api/* only, and only the orders it placed (a new one every start). */
  readonly customerKey: string;
  readonly natsUrl: string;
  readonly natsPort: number;
  /** nats-server's monitoring endpoint (/varz, /jsz), when this platform started the server. */
  readonly natsMonitorUrl?: string;
  /** Every identity's credentials, when the server has authorization (natsAuth). */
  readonly natsUsers?: NatsUsers;
  /** The admin's credentials, to spread into connect() (`{ servers: natsUrl, ...natsAdmin }`); absent without authorization. */
  readonly natsAdmin?: NatsCredentials;
  readonly ports: Readonly<Record<PlatformService, number>>;
  readonly storeDir: string;
  /** How many times each process (each service, and the nats-server it started) has been (re)started. */
  readonly starts: Readonly<Record<string, number>>;
  pid(process: PlatformService | 'nats-server'): number | undefined;
  /** SIGKILL one process; the supervisor restarts it (the nats-server on the same store) unless `restart` is false. */
  kill(process: PlatformService | 'nats-server'): void;
  waitReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

// Re-exported for scripts/lib/prometheus.ts.
export { freePort };


interface Proc {
  name: string;
  child?: ChildProcess;
  stopping: boolean;
  restarts: number;
}

/** Calls `onLine` for every line a child process writes. */
export function pipeLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => buf && onLine(buf));
}

let built: Promise<void> | undefined;
/**
 * Once per process (a test file starts several platforms): jemalloc there if it can be (the launcher preloads it) and
 * the workloads bundled from the sources as they are now.
 */
function workloadsBuilt(): Promise<void> {
  built ??= (async () => {
    ensureJemalloc((m) => process.stderr.write(`[platform] ${m}\n`));
    await buildWorkloads(REPO_ROOT);
  })();
  return built;
}

export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  await Promise.all([ensureTools(['nats-server']), workloadsBuilt()]);
  const free = opts.ports === 'free';
  const apiKey = opts.apiKey ?? (free ? `test-${randomBytes(6).toString('hex')}` : DEV_API_KEY);
  const customerKey = `customer-${randomBytes(8).toString('hex')}`;
  const log = opts.onLog ?? (() => {});
  const services = opts.services ?? PLATFORM_SERVICES;
  const ports = {} as Record<PlatformService, number>;
  // Distinct: the system may hand out a port it handed out a moment ago, and two services on one port answer each
  // other's requests (a bench run once got "no route for POST /api/orders" from the gateway's port).
  const taken = new Set<number>();
  const distinctFreePort = async (): Promise<number> => {
    let port = await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    return port;
  };
  for (const s of PLATFORM_SERVICES) ports[s] = free ? await distinctFreePort() : Ports[s];

  const storeDir = mkdtempSync(path.join(tmpdir(), 'sagamesh-'));
  const procs: Proc[] = [];
  const starts: Record<string, number> = {};
  const byName = (s: string) => procs.find((p) => p.name === s);
  const stopAll = async () => {
    // Services first (they drain into NATS), then the server.
    await Promise.all(procs.filter((p) => p.name !== 'nats-server').map((p) => stopProc(p, 10_000)));
    const nats = byName('nats-server');
    if (nats) await stopProc(nats, 5_000);
    rmSync(storeDir, { recursive: true, force: true });
  };
  /** Runs a process and starts it again when it exits unexpectedly: soon after a good run, with growing backoff in a crash loop. */
  const supervise = (p: Proc, spawnIt: () => ChildProcess) => {
    const child = spawnIt();
    p.child = child;
    starts[p.name] = (starts[p.name] ?? 0) + 1;
    pipeLines(child.stdout, (l) => log(p.name, l));
    pipeLines(child.stderr, (l) => log(p.name, l));
    const startedAt = Date.now();
    child.on('exit', (code, signal) => {
      if (p.stopping || opts.restart === false) return;
      // Back off on a crash loop, not on a crash after a good run (crash-after-commit does that on purpose).
      if (Date.now() - startedAt > 10_000) p.restarts = 0;
      p.restarts++;
      const delay = Math.min(100 * 2 ** Math.min(p.restarts, 6), 5000);
      log(p.name, `exited (code ${code}, signal ${signal}); restarting in ${delay} ms`);
      setTimeout(() => !p.stopping && supervise(p, spawnIt), delay);
    });
  };

  try {
    let natsUrl = opts.natsUrl;
    let natsPort = 0;
    let natsMonitorUrl: string | undefined;
    let natsUsers: NatsUsers | undefined;
    if (!natsUrl) {
      natsPort = free ? await distinctFreePort() : Ports.nats;
      const monitorPort = free ? await distinctFreePort() : 8222;
      natsMonitorUrl = `http://127.0.0.1:${monitorPort}`;
      natsUrl = `nats://127.0.0.1:${natsPort}`;
      const nats: Proc = { name: 'nats-server', stopping: false, restarts: 0 };
      // The same store on every start: a restarted server recovers its streams, and the services reconnect.
      const args = ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', path.join(storeDir, 'nats'), '-m', String(monitorPort)];
      if (opts.natsAuth !== false) {
        // make dev keeps its passwords (make dlq reads the admin's); a test platform has its own.
        natsUsers = free ? generateNatsUsers() : loadOrCreateNatsUsers(path.join(REPO_ROOT, '.dev', 'nats', 'users.json'));
        args.push('-c', writeNatsAuthConfig(path.join(free ? storeDir : path.join(REPO_ROOT, '.dev', 'nats'), 'nats-server.conf'), natsUsers));
      }
      supervise(nats, () => spawn(toolPath('nats-server'), args, { stdio: ['ignore', 'pipe', 'pipe'] }));
      procs.push(nats);
      await waitForPort(natsPort, 15_000, 'nats-server');
      if (natsUsers) await provisionAsAdmin(natsUrl, natsUsers.admin, Number(opts.env?.all?.JETSTREAM_STORE_MIB) || undefined);
    }

    const baseEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      NATS_URL: natsUrl,
      // The local platform (make dev, the e2e tests, the bench) is a demo: faults can be injected. A cluster decides in its synth.
      FAULT_INJECTION: 'true',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      DEV_MODE: 'true',
      // Under DEV_MODE the dev key is an admin key already; listing it again is harmless.
      ADMIN_API_KEYS: apiKey,
      API_KEYS: customerKey,
      ORDERS_URL: `http://127.0.0.1:${ports.orders}`,
      ...(process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? { OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
      // The launcher's allocator choice (node-service.sh): empty runs glibc's malloc, to compare.
      ...(process.env.SAGAMESH_JEMALLOC !== undefined ? { SAGAMESH_JEMALLOC: process.env.SAGAMESH_JEMALLOC } : {}),
      ...opts.env?.all,
    };
    const launch = (p: Proc) => {
      const svc = p.name as PlatformService;
      // The explorer's dead-letter replay publishes on other identities' subjects: as the admin, like make dlq.
      const dlq = natsUsers && svc === 'gateway' ? { DLQ_NATS_USER: natsUsers.admin.user, DLQ_NATS_PASSWORD: natsUsers.admin.pass } : {};
      const env = { ...baseEnv, PORT: String(ports[svc]), OTEL_SERVICE_NAME: svc, ...(natsUsers ? natsUserEnv(natsUsers[svc]) : {}), ...dlq, ...opts.env?.[svc] };
      supervise(p, () => spawnWorkload(bundleOf(`services/${svc}`), env));
    };

    for (const svc of services) {
      const p: Proc = { name: svc, stopping: false, restarts: 0 };
      procs.push(p);
      launch(p);
    }

    const platform: Platform = {
      gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
      apiKey,
      customerKey,
      natsUrl,
      natsPort,
      ...(natsMonitorUrl ? { natsMonitorUrl } : {}),
      ...(natsUsers ? { natsUsers, natsAdmin: natsUsers.admin } : {}),
      ports,
      storeDir,
      starts,
      pid: (s) => byName(s)?.child?.pid,
      kill(s) {
        byName(s)?.child?.kill('SIGKILL');
      },
      async waitReady(timeoutMs = opts.readyTimeoutMs ?? 60_000) {
        for (const svc of services) await waitReady(ports[svc], svc, timeoutMs);
      },
      stop: stopAll,
    };
    await platform.waitReady();
    return platform;
  } catch (err) {
    // Nothing of a platform that did not come up is left running (a failed start once left its nats-server behind).
    await stopAll();
    throw err;
  }
}

/** Only the admin creates streams and buckets: provisions them before any service starts (the services then check). */
async function provisionAsAdmin(servers: string, admin: NatsCredentials, storeMiB: number | undefined): Promise<void> {
  const nc = await connect({ servers, name: 'provision', ...admin });
  try {
    await provisionPlatform(nc, { log: createLogger('provision', 'warn'), ...(storeMiB ? { storeMiB } : {}) });
  } finally {
    await nc.close();
  }
}

async function stopProc(p: Proc, graceMs: number): Promise<void> {
  p.stopping = true;
  const child = p.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Waits until a service answers 200 on /readyz. */
export async function waitReady(port: number, what: string, timeoutMs: number): Promise<void> {
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
  await waitFor(ready, { timeoutMs, what: `${what} to be ready on port ${port} (look at its log lines above)`, intervalMs: 100 });
}

async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const { connect } = await import('node:net');
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
  await waitFor(listening, { timeoutMs, what: `${what} listening on port ${port}`, intervalMs: 100 });
}

