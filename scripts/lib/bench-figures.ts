/**
 * The benches' figures that need no running platform (parsing `nats bench`, percentiles, /proc readings), and the
 * closed loop they are measured with.
 */
import { readFileSync } from 'node:fs';
import type { RunView } from '@sagamesh/contracts';

/** What a service may hold at idle (issue 12's acceptance): the bench flags any process above it. */
export const IDLE_RSS_LIMIT_MB = 100;

/**
 * The rate `nats bench` printed: "aggregated stats: N msgs/sec" with several clients, "<kind> stats: N msgs/sec"
 * with one (no aggregate line then). Undefined when it printed neither.
 */
export function natsBenchRate(output: string): number | undefined {
  const m = /aggregated stats: ([\d,.]+) msgs\/sec/.exec(output) ?? /stats: ([\d,.]+) msgs\/sec/.exec(output);
  return m ? Number(m[1]!.replaceAll(',', '')) : undefined;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of latencies in ms (NaN when there are none). */
export function summarize(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { count: sorted.length, p50: pct(50), p99: pct(99), max: sorted.at(-1) ?? NaN };
}

/**
 * A process's resident memory in MB (10^6 bytes, as the goal says), from the text of /proc/<pid>/status: in all, and
 * what it is made of — file-backed pages (the node binary's code and data it touched, shared between the processes,
 * counted in each RSS) and anonymous memory (heaps, malloc). Undefined without the fields (not Linux).
 */
/**
 * `clients` concurrent loops, each awaiting `op` again until `ms` are up (`client`: the loop's number, `k`: its own
 * count, `i`: the count over all loops). Returns each op's latency in ms; calls `progress(done)` every 5 s.
 */
export async function closedLoop(
  clients: number,
  ms: number,
  op: (client: number, k: number, i: number) => Promise<void>,
  progress?: (done: number) => void,
): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  let next = 0;
  const timer = progress && setInterval(() => progress(latencies.length), 5000);
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let k = 0; performance.now() < end; k++) {
          const start = performance.now();
          await op(client, k, next++);
          latencies.push(performance.now() - start);
        }
      }),
    );
  } finally {
    clearInterval(timer);
  }
  return latencies;
}

export function memoryFromStatus(status: string): { rss: number; file: number; anon: number } | undefined {
  const mb = (field: string) => {
    const kib = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    return kib === undefined ? NaN : (Number(kib) * 1024) / 1e6;
  };
  const m = { rss: mb('VmRSS'), file: mb('RssFile'), anon: mb('RssAnon') };
  return Object.values(m).every(Number.isFinite) ? m : undefined;
}

/** memoryFromStatus of a running process; undefined when it is gone. */
export function memoryOf(pid: number | undefined): { rss: number; file: number; anon: number } | undefined {
  if (!pid) return undefined;
  try {
    return memoryFromStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface HeapFigures {
  /** V8's heap: in use, and committed (what of it is resident). */
  heapUsed: number;
  heapTotal: number;
  /** Memory V8 tracks outside its heap (Buffers). */
  external: number;
}

/** A Node service's heap figures, MB, from prom-client's default metrics. */
export function heapFromMetrics(metricsText: string): HeapFigures | undefined {
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText)?.[1] ?? NaN) / 1e6;
  const figures = { heapUsed: value('nodejs_heap_size_used_bytes'), heapTotal: value('nodejs_heap_size_total_bytes'), external: value('nodejs_external_memory_bytes') };
  return Object.values(figures).every(Number.isFinite) ? figures : undefined;
}

/** The malloc a process runs with: jemalloc when the launcher preloaded it, glibc's otherwise. */
export function allocatorOf(pid: number | undefined): 'jemalloc' | 'glibc malloc' | undefined {
  if (!pid) return undefined;
  try {
    return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libjemalloc') ? 'jemalloc' : 'glibc malloc';
  } catch {
    return undefined;
  }
}

/** utime+stime in seconds, from /proc (Linux); 0 when the process is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    // The command name (field 2) may hold spaces: the fields that follow start after its closing parenthesis.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** One saga as the client saw it: when its POST went out, its run view at the end, when the end event arrived (epoch ms). */
export interface SagaSample {
  sentAt: number;
  receivedAt: number;
  run: Pick<RunView, 'startedAt' | 'endedAt' | 'steps'>;
}

export interface TimelineSegment {
  segment: string;
  meanMs: number;
  p50Ms: number;
}

/**
 * Where a saga's time goes, from the engine's own timestamps in the end event's run view (ms resolution, so the mean
 * says more than the median): from the POST to the run's start, each step (its command sent → its reply taken), the
 * engine between steps, the end, and the end event's way to the client. Sagas whose steps did not all succeed in
 * one attempt each (a compensation, a retry) have other segments and are left out.
 */
export function sagaTimeline(samples: readonly SagaSample[]): TimelineSegment[] {
  const at = (iso: string | undefined) => (iso === undefined ? NaN : Date.parse(iso));
  const segments = new Map<string, number[]>();
  const add = (name: string, ms: number) => {
    const list = segments.get(name);
    if (list) list.push(ms);
    else segments.set(name, [ms]);
  };
  for (const { sentAt, receivedAt, run } of samples) {
    if (run.steps.length === 0 || !run.steps.every((s) => s.status === 'Succeeded' && s.attempts === 1)) continue;
    add('POST → run started', at(run.startedAt) - sentAt);
    let previous = { name: 'run start', endedAt: at(run.startedAt) };
    for (const step of run.steps) {
      add(`${previous.name} → ${step.name}`, at(step.startedAt) - previous.endedAt);
      add(`${step.name} (command → reply taken)`, at(step.endedAt) - at(step.startedAt));
      previous = { name: step.name, endedAt: at(step.endedAt) };
    }
    add(`${previous.name} → run ended`, at(run.endedAt) - previous.endedAt);
    add('run ended → end event at the client', receivedAt - at(run.endedAt));
  }
  return [...segments].map(([segment, ms]) => ({ segment, meanMs: ms.reduce((a, b) => a + b, 0) / ms.length, p50Ms: summarize(ms).p50 }));
}

/**
 * The `nats` CLI's connection flags. `--flag=value`: a generated password may begin with "-" (base64url), which the
 * CLI's parser takes for a flag when it is a separate argument ("expected argument for flag '--password'").
 */
export function natsCliArgs(url: string, credentials?: { user: string; pass: string }): string[] {
  return [`--server=${url}`, ...(credentials ? [`--user=${credentials.user}`, `--password=${credentials.pass}`] : [])];
}
