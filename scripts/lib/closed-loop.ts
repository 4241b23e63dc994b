/** What the small NATS benches share: a closed loop of concurrent clients, and the headers an engine's message carries. */
import { headers, nuid, type MsgHdrs } from '@nats-io/transport-node';
import { cpuSeconds, summarize } from './bench-figures.ts';

/** CloudEvents and trace headers of the size the engine's messages carry. */
export function ceHeaders(correlationId: string): MsgHdrs {
  const h = headers();
  h.set('ce-id', nuid.next());
  h.set('ce-type', 'sagamesh.inventory.reserve.v1');
  h.set('ce-source', 'orchestrator');
  h.set('ce-specversion', '1.0');
  h.set('ce-time', new Date().toISOString());
  h.set('ce-correlationid', correlationId);
  h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
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

/** `clients` concurrent loops, each awaiting `op(client, k)` again until `seconds` are up. */
export async function closedLoop(clients: number, seconds: number, serverPids: readonly number[], op: (client: number, k: number) => Promise<void>): Promise<LoopFigures> {
  const serverCpu = () => serverPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const latencies: number[] = [];
  const server0 = serverCpu();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; performance.now() < end; k++) {
        const start = performance.now();
        await op(c, k);
        latencies.push(performance.now() - start);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const { p50, p99 } = summarize(latencies);
  const n = latencies.length;
  return { perSecond: n / elapsed, p50, p99, serverUs: ((serverCpu() - server0) * 1e6) / n, selfUs: (self.user + self.system) / n };
}
