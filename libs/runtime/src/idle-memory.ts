// Gives the memory a load left behind back to the system once the process is idle (issue 12: a service idles under 100 MB RSS).
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Logger } from './logger.ts';

export interface IdleReleaseOptions {
  /** How often the event loop's use is looked at; a release needs one whole interval idle. Default 2 s. */
  intervalMs?: number;
  /** Idle: the event loop was busy under this share of the interval. Default 5 % (the bench's "idle" is under 5 % of a core). */
  maxBusy?: number;
  /** Release only when V8's heap holds this much more than right after the last release. Default 8 MiB. */
  minGrowthBytes?: number;
  log?: Logger;
  /** The collector; default the one `--expose-gc` exposes (without it, nothing is released). */
  gc?: NodeJS.GCFunction;
}

/**
 * Under load V8 grows its heap (the young generation up to 2 × 32 MB, the old generation to a multiple of what is
 * live) and keeps it after the load: the freed pages stay resident until a memory-reducing GC. Its own memory
 * reducer would run one once the process goes idle, but it judges idleness by an allocation rate that it only
 * re-measures at a GC, so a process that stopped allocating keeps the rate of its busy period and the reducer never
 * runs (`--trace-memory-reducer`: "high alloc, foreground", every 8 s, for ever). Measured after the bench's load:
 * a service kept 150–310 MB RSS, 40–250 MB of it V8 pages with nothing live on them.
 *
 * This runs that GC: when the event loop was idle for a whole interval and the heap grew by `minGrowthBytes` since
 * the last release (so an idle process does not collect again and again), one full GC that shrinks the heap
 * (`gc({ flavor: 'last-resort' })`, what V8 does under memory pressure: 70–120 ms measured for the services' 55–170 MB
 * heaps after the bench's load, 4 at once on 2 cores). Never under load:
 * a busy event loop skips it. Returns a stop function (the timer does not keep the process alive).
 */
export function releaseMemoryWhenIdle(opts: IdleReleaseOptions = {}): () => void {
  const gc = opts.gc ?? globalThis.gc;
  if (!gc) return () => {};
  const maxBusy = opts.maxBusy ?? 0.05;
  const minGrowth = opts.minGrowthBytes ?? 8 * 1024 * 1024;
  // 0: the first idle interval also gives back what starting took (the young generation grows while modules load).
  let afterRelease = 0;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy >= maxBusy) return;
    const before = v8.getHeapStatistics().total_physical_size;
    if (before < afterRelease + minGrowth) return;
    const t0 = performance.now();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    afterRelease = v8.getHeapStatistics().total_physical_size;
    // The GC's own time must not count as busy in the next interval.
    last = performance.eventLoopUtilization();
    opts.log?.debug({ heapBeforeMiB: mib(before), heapAfterMiB: mib(afterRelease), ms: Math.round(performance.now() - t0) }, 'idle: released heap memory');
  }, opts.intervalMs ?? 2000);
  timer.unref();
  return () => clearInterval(timer);
}

const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
