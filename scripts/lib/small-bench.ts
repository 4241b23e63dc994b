/**
 * What the small NATS benches (bench:outbox, bench:step) share: their flags, the servers they run on (one, then a
 * 3-server cluster), the platform's own client path (connectNats, JetStreamPublisher, buildHeaders), and a closed loop
 * of concurrent clients with the CPU it cost.
 */
import { parseArgs } from 'node:util';
import { CeHeaders, stepCommandType } from '@sagamesh/contracts';
import { buildHeaders, connectNats, createLogger, JetStreamPublisher, setHeader, type MsgHdrs, type NatsConnection } from '@sagamesh/runtime';
import { startNatsCluster, startNatsServer } from '@sagamesh/testing';
import { closedLoop, cpuSeconds, summarize } from './bench-figures.ts';
import { ensureTools } from './tools.ts';

export interface SmallBenchArgs {
  /** Per row. */
  seconds: number;
  clientCounts: number[];
  /** Also on a 3-server cluster. */
  cluster: boolean;
}

/** --seconds S per row (3; 1 under CI=true), --clients N,N (2,32), --no-cluster; exits with the usage on bad values. */
export function parseSmallBenchArgs(name: string): SmallBenchArgs {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: process.env.CI === 'true' ? '1' : '3' },
      clients: { type: 'string', default: '2,32' },
      cluster: { type: 'boolean', default: true },
    },
    allowNegative: true,
  });
  const seconds = Number(values.seconds);
  const clientCounts = values.clients.split(',').map(Number);
  if (!(seconds > 0) || clientCounts.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`usage: ${name} [--seconds S>0] [--clients N,N,...] [--no-cluster]`);
    process.exit(2);
  }
  return { seconds, clientCounts, cluster: values.cluster };
}

/** Runs `measure` on one fresh nats-server (R1 streams), then, with `cluster`, on a fresh 3-server cluster (R3). */
export async function onServers(cluster: boolean, measure: (urls: string[], pids: number[], replicas: 1 | 3) => Promise<void>): Promise<void> {
  await ensureTools(['nats-server']);
  const single = await startNatsServer();
  try {
    await measure([single.url], [single.pid], 1);
  } finally {
    await single.stop();
  }
  if (!cluster) return;
  const three = await startNatsCluster(3);
  try {
    await measure(three.urls, three.servers.map((s) => s.pid), 3);
  } finally {
    await three.stop();
  }
}

/** A connection and a publisher as a service has them (writes coalesced per turn, requests muxed on one inbox). */
export async function connectAsService(urls: readonly string[]): Promise<{ nc: NatsConnection; pub: JetStreamPublisher }> {
  const nc = await connectNats({ servers: urls.join(','), name: 'bench', log: createLogger('bench', 'warn'), waitOnFirstConnect: false });
  return { nc, pub: new JetStreamPublisher(nc, { timeoutMs: 10_000 }) };
}

// The engine's own trace context goes along when no span is active (services/orchestrator outbox.ts).
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** The headers of an engine's command, built as the platform builds them. */
export function commandHeaders(correlationId: string): MsgHdrs {
  const h = buildHeaders({ type: stepCommandType('inventory', 'reserve'), source: 'orchestrator', data: undefined, correlationId });
  setHeader(h, CeHeaders.traceparent, TRACEPARENT);
  return h;
}

export interface LoopFigures {
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU of the given server processes per operation, µs. */
  serverUs: number;
  /** CPU of this process per operation, µs. */
  selfUs: number;
}

/** closedLoop's latencies, and the CPU the given servers and this process spent per operation. */
export async function measureLoop(clients: number, seconds: number, serverPids: readonly number[], op: (client: number, k: number) => Promise<void>): Promise<LoopFigures> {
  const serverCpu = () => serverPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const server0 = serverCpu();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const latencies = await closedLoop(clients, seconds * 1000, op);
  const elapsed = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const { p50, p99 } = summarize(latencies);
  const n = latencies.length;
  return { perSecond: n / elapsed, p50, p99, serverUs: ((serverCpu() - server0) * 1e6) / n, selfUs: (self.user + self.system) / n };
}
