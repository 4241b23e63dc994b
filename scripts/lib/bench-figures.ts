/** The bench's figures that need no running platform: parsing `nats bench`, percentiles, /proc readings. */
import { readFileSync } from 'node:fs';

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

/** Resident set size in MB (10^6 bytes, as the goal says), from /proc (Linux); undefined when the process is gone. */
export function rssMB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : (Number(kib) * 1024) / 1e6;
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
