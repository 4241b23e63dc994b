import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsCredentials, type NatsUsers, writeNatsAuthConfig } from './nats-auth.ts';

/** The repository root, found from this file (never from the cwd). */
export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
const TOOLS_BIN = join(REPO_ROOT, '.tools', 'bin');

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** The server process's pid (to read its CPU time from /proc). */
  pid: number;
  /** The users of a server started with `auth` (connect as `users.admin` to provision or inspect). */
  users?: NatsUsers;
  /** Graceful stop (SIGTERM), then removes the store dir if this helper created it. */
  stop(): Promise<void>;
  /** SIGKILL now, as a crash would; `stop()` afterwards still cleans up. */
  kill(): void;
}

export interface StartNatsServerOptions {
  jetstream?: boolean;
  /** Reuse a port (e.g. to restart a killed server where clients reconnect); default a free one. */
  port?: number;
  /** Reuse a store dir (it is then left in place on stop); default a new temporary one. */
  storeDir?: string;
  /** Authorization: these users, with the contracts' permissions (an unauthenticated client is then refused). */
  auth?: NatsUsers;
  /** Join a JetStream cluster: its name, this server's route port and every member's (this one's included). */
  cluster?: { name: string; port: number; routes: readonly number[] };
}

/** A free TCP port on the loopback interface (the OS picks it; it may be taken again before use). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `cond` until it returns a truthy value (returned) or throws after `timeoutMs`, naming `what`. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeoutMs?: number; what: string; intervalMs?: number },
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? `; last error: ${(lastError as Error).message ?? String(lastError)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}${why}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function pinnedVersion(): string | undefined {
  const file = join(REPO_ROOT, 'tools', 'versions.env');
  if (!existsSync(file)) return undefined;
  return /^NATS_SERVER_VERSION=(\S+)$/m.exec(readFileSync(file, 'utf8'))?.[1];
}

function onPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The pinned .tools/bin/nats-server, else one on PATH of the pinned version, else a clear error. */
export function natsServerBinary(pathVar = process.env.PATH): string {
  const pinned = join(TOOLS_BIN, 'nats-server');
  if (existsSync(pinned)) return pinned;
  const want = pinnedVersion();
  const found = onPath('nats-server', pathVar);
  if (found && want) {
    const out = execFileSync(found, ['--version'], { encoding: 'utf8' }).trim();
    if (out === `nats-server: ${want}`) return found;
    throw new Error(`nats-server on PATH (${found}) is "${out}", not the pinned ${want}: run \`make tools\` to build ${pinned}`);
  }
  throw new Error(`nats-server not found at ${pinned}: run \`make tools\``);
}

// Servers still running when the test process exits are killed with it.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function canConnect(url: string, jetstream: boolean, as?: NatsCredentials): Promise<boolean> {
  const nc = await connect({ servers: url, timeout: 1000, reconnect: false, ...as });
  try {
    if (jetstream) await (await jetstreamManager(nc)).getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}

/**
 * Starts a real nats-server on 127.0.0.1 (JetStream on by default, file store in a temp dir) and
 * resolves once it accepts connections (and JetStream answers).
 */
export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServer> {
  const bin = natsServerBinary();
  const jetstream = opts.jetstream ?? true;
  const ownStore = !opts.storeDir;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'sagamesh-nats-')));
  // A free port can be taken between probing and binding: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port ? 1 : 5); attempt++) {
    const port = opts.port ?? (await freePort());
    const args = ['-a', '127.0.0.1', '-p', String(port), '-n', `sagamesh-test-${port}`];
    if (jetstream) args.push('-js', '-sd', storeDir);
    if (opts.auth) args.push('-c', writeNatsAuthConfig(join(storeDir, 'auth.conf'), opts.auth));
    if (opts.cluster) {
      const { name, port: routePort, routes } = opts.cluster;
      args.push('--cluster_name', name, '--cluster', `nats://127.0.0.1:${routePort}`, '--routes', routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000);
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let exitedEarly = false;
    void exited.then(() => {
      exitedEarly = true;
      running.delete(child);
    });
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    const url = `nats://127.0.0.1:${port}`;
    try {
      await waitFor(
        () => {
          if (exitedEarly) throw new Error(`nats-server exited: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
          return canConnect(url, jetstream, opts.auth?.admin);
        },
        { timeoutMs: 20_000, what: `nats-server on ${url}`, intervalMs: 100 },
      );
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      await exited;
      continue;
    }
    let stopped = false;
    return {
      url,
      port,
      storeDir,
      pid: child.pid!,
      ...(opts.auth ? { users: opts.auth } : {}),
      kill() {
        child.kill('SIGKILL');
      },
      async stop() {
        if (!stopped) {
          stopped = true;
          if (!exitedEarly) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        if (ownStore) await rm(storeDir, { recursive: true, force: true });
      },
    };
  }
  if (ownStore) await rm(storeDir, { recursive: true, force: true });
  throw new Error(`could not start nats-server (${bin})`, { cause: lastError });
}

export interface NatsCluster {
  servers: NatsServer[];
  /** Every member's client URL (connect to all, as a client of a cluster does). */
  urls: string[];
  stop(): Promise<void>;
}

/**
 * Starts `size` real nats-servers as one JetStream cluster on 127.0.0.1 (each with its own store) and resolves once
 * every member answers JetStream requests, i.e. a meta leader is elected. They start together: none is ready alone.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const name = `sagamesh-test-${routes[0]}`;
  const started = await Promise.allSettled(routes.map((port) => startNatsServer({ cluster: { name, port, routes } })));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw new Error(`could not start a ${size}-server NATS cluster`, { cause: failed.reason });
  }
  return { servers, urls: servers.map((s) => s.url), stop };
}
