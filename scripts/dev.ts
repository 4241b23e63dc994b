/**
 * `make dev`: the whole platform as local processes on one local nats-server, no cluster.
 *   K8S=1         also a local kube-apiserver + etcd and the operator (kubectl apply -f examples/)
 *   MONITORING=1  also a local Prometheus scraping every service, with the alert rules
 * Ctrl-C stops everything cleanly.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ExplorerPaths, Ports } from '@sagamesh/contracts';
import { bundleOf } from './lib/build.ts';
import { pipeLines, spawnWorkload, startPlatform, waitReady, PLATFORM_SERVICES, type Platform } from './lib/platform.ts';
import { ensureTools, REPO_ROOT, TOOLS_BIN } from './lib/tools.ts';
import { ensureUiBuilt } from './lib/ui.ts';
import { formatLogLine, serviceColor } from './lib/pretty-log.ts';

const flag = (name: string) => ['1', 'true', 'yes'].includes((process.env[name] ?? '').toLowerCase());
const withK8s = flag('K8S');
const withMonitoring = flag('MONITORING');
const color = process.stdout.isTTY;
const started = Date.now();
const say = (msg: string) => console.log(`${color ? '\x1b[1m' : ''}[dev +${((Date.now() - started) / 1000).toFixed(1)}s]${color ? '\x1b[0m' : ''} ${msg}`);
const print = (service: string, line: string) => {
  const text = formatLogLine(line);
  if (text !== undefined) console.log(`${serviceColor(service, color)} ${text}`);
};

const cleanups: (() => Promise<void>)[] = [];
let stopping = false;
let stoppingSince = 0;
async function shutdown(code: number): Promise<never> {
  if (stopping) {
    // The same Ctrl-C can arrive twice (terminal and process group); only a later one forces the exit.
    if (Date.now() - stoppingSince < 2000) return await new Promise<never>(() => {});
    say('forced exit: some processes or temporary files may be left behind');
  } else {
    stopping = true;
    stoppingSince = Date.now();
    say('stopping everything…');
    for (const fn of cleanups.reverse()) await fn().catch((e: unknown) => say(`cleanup failed: ${String(e)}`));
    say('stopped');
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  say(`building missing tools, if any (nats-server${withK8s ? ', etcd, kube-apiserver, kubectl' : ''}${withMonitoring ? ', prometheus' : ''})`);
  await ensureTools(['nats-server', ...(withK8s ? (['etcd', 'kube-apiserver', 'kubectl'] as const) : []), ...(withMonitoring ? (['prometheus', 'promtool'] as const) : [])]);
  const busy = await busyPorts([Ports.nats, ...PLATFORM_SERVICES.map((s) => Ports[s]), ...(withK8s ? [Ports.operator] : []), ...(withMonitoring ? [Ports.prometheus] : [])]);
  if (busy.length) {
    throw new Error(`port ${busy.join(', ')} already in use: is another \`make dev\` running? Stop it, or find the process with \`ss -ltnp | grep -E ':(${busy.join('|')}) '\``);
  }
  ensureUiBuilt(say);
  say(`starting nats-server (JetStream, temporary store) and ${PLATFORM_SERVICES.join(', ')}`);
  const platform: Platform = await startPlatform({ ports: 'default', onLog: print, readyTimeoutMs: 90_000 });
  cleanups.push(() => platform.stop());
  say('all services are ready');

  let kubeconfig: string | undefined;
  if (withK8s) {
    say('starting a local kube-apiserver + etcd (the CRDs are installed) and the operator');
    const { startKubeRig } = await import('@sagamesh/testing');
    const rig = await startKubeRig({ crds: true });
    cleanups.push(() => rig.stop());
    kubeconfig = rig.kubeconfigPath;
    const operator = spawnService('operator', bundleOf('operator'), {
      KUBECONFIG: kubeconfig,
      NATS_URL: platform.natsUrl,
      ...(platform.natsUsers ? { NATS_USER: platform.natsUsers.operator.user, NATS_PASSWORD: platform.natsUsers.operator.pass } : {}),
      PORT: String(Ports.operator),
      HOST: '127.0.0.1',
    });
    cleanups.push(() => stopChild(operator));
    await waitReady(Ports.operator, 'operator', 60_000);
  }
  if (withMonitoring) {
    say('starting Prometheus (scraping every service, rules loaded)');
    const { platformTargets, startPrometheus } = await import('./lib/prometheus.ts');
    const operatorTarget = { job: 'sagamesh', service: 'operator', address: `127.0.0.1:${Ports.operator}` };
    const targets = [...platformTargets(platform), ...(withK8s ? [operatorTarget] : [])];
    const prom = await startPrometheus({ port: Ports.prometheus, targets, onLog: print });
    cleanups.push(() => prom.stop());
  }

  const b = color ? '\x1b[1m' : '';
  const r = color ? '\x1b[0m' : '';
  console.log(`
${b}sagamesh is running${r} (Ctrl-C stops everything)
  gateway        ${platform.gatewayUrl}
  saga explorer  ${platform.gatewayUrl}${ExplorerPaths.ui}   (sign in with a key below)
  nats           ${platform.natsUrl}   (one user per service; the admin's password is in .dev/nats/users.json)
  services       ${PLATFORM_SERVICES.map((s) => `${s} :${platform.ports[s]}`).join(', ')} (each serves /livez /readyz /metrics)${
    withMonitoring ? `\n  prometheus     http://127.0.0.1:${Ports.prometheus}` : ''
  }${kubeconfig ? `\n  kubernetes     export KUBECONFIG=${kubeconfig}   (kubectl is ${TOOLS_BIN}/kubectl)` : ''}
  dev API key    ${platform.apiKey}   (an admin key: /api/*, /admin/*, every order)
  customer key   ${platform.customerKey}   (/api/* and its own orders only; /admin/* answers 403)

Place an order:
  curl -s -X POST ${platform.gatewayUrl}/api/orders -H 'Authorization: Bearer ${platform.apiKey}' \\
    -H 'Content-Type: application/json' -d '{"customerId":"c-1","items":[{"sku":"sku-1","quantity":2}]}'
Then:  curl -s ${platform.gatewayUrl}/api/orders/<orderId> -H 'Authorization: Bearer ${platform.apiKey}'
Or:    make demo        (a few orders, one failing, and how each saga ended)${
    kubeconfig ? `\nSagas: KUBECONFIG=${kubeconfig} ${TOOLS_BIN}/kubectl apply -f examples/ && ${TOOLS_BIN}/kubectl get sagas -w` : ''
  }
`);
  await new Promise(() => {});
} catch (err) {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
}

function spawnService(name: string, entry: string, env: Record<string, string>): ChildProcess {
  const child = spawnWorkload(entry, { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env });
  for (const stream of [child.stdout, child.stderr]) pipeLines(stream, (line) => print(name, line));
  child.on('exit', (code, signal) => !stopping && say(`${name} exited (code ${code}, signal ${signal})`));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const { createServer } = await import('node:net');
  const inUse = await Promise.all(
    ports.map(
      (port) =>
        new Promise<boolean>((resolve) => {
          const srv = createServer();
          srv.once('error', () => resolve(true));
          srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
        }),
    ),
  );
  return ports.filter((_, i) => inUse[i]);
}
