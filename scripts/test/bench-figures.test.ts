import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { allocatorOf, closedLoop, cpuSeconds, heapFromMetrics, memoryFromStatus, memoryOf, natsBenchRate, sagaTimeline, summarize } from '../lib/bench-figures.ts';

// As nats 0.5 prints them: one client has no aggregate line, several have per-client lines before it.
const oneClient = `16:06:37 [1] Starting JetStream synchronous publisher, publishing 2,000 messages

NATS JetStream synchronous publisher stats: 12,160 msgs/sec ~ 1.5 MiB/sec ~ min: 36.50us ~ avg: 82.11us ~ P99: 174.85us
`;
const twoClients = `  [1] 6,924 msgs/sec ~ 866 KiB/sec ~ min: 38.59us ~ avg: 144.20us (1,000 msgs)
  [2] 6,925 msgs/sec ~ 866 KiB/sec ~ min: 32.02us ~ avg: 144.17us (1,000 msgs)

 NATS JetStream synchronous publisher aggregated stats: 13,844 msgs/sec ~ 1.7 MiB/sec
 message rates min 6,924 | avg 6,924 | max 6,925 | stddev 0 msgs
`;

test('nats bench rate: the aggregate with several clients, the single line with one (--concurrency 1), none when absent', () => {
  assert.equal(natsBenchRate(twoClients), 13_844);
  assert.equal(natsBenchRate(oneClient), 12_160);
  assert.equal(natsBenchRate('NATS Core NATS service requester stats: 9,029.5 msgs/sec ~ 1.1 MiB/sec'), 9_029.5);
  assert.equal(natsBenchRate('nats: error: nats: Authorization Violation'), undefined);
});

test('latency summary: nearest-rank p50/p99 and max, NaN when nothing was measured', () => {
  const ms = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(summarize(ms), { count: 100, p50: 50, p99: 99, max: 100 });
  assert.deepEqual(summarize([7]), { count: 1, p50: 7, p99: 7, max: 7 });
  const none = summarize([]);
  assert.equal(none.count, 0);
  assert.ok(Number.isNaN(none.p50) && Number.isNaN(none.p99) && Number.isNaN(none.max));
});

test('/proc readings: this process has a plausible RSS, made of file-backed and anonymous pages, and CPU time; a process that is gone has none', () => {
  const m = memoryOf(process.pid);
  assert.ok(m && m.rss > 10 && m.rss < 4000, `RSS ${m?.rss} MB`);
  assert.ok(m.file > 0 && m.anon > 0 && m.file + m.anon <= m.rss + 0.1, JSON.stringify(m));
  assert.ok(cpuSeconds(process.pid) > 0);
  assert.equal(allocatorOf(process.pid), process.env.LD_PRELOAD?.includes('jemalloc') ? 'jemalloc' : 'glibc malloc');
  assert.equal(memoryOf(undefined), undefined);
  assert.equal(memoryOf(2 ** 22 + 1), undefined);
  assert.equal(allocatorOf(2 ** 22 + 1), undefined);
  assert.equal(cpuSeconds(2 ** 22 + 1), 0);
});

test('memory parsed from /proc/<pid>/status in MB (10^6 bytes); a text without the fields gives none', () => {
  const status = 'Name:\tnode\nVmRSS:\t    1000 kB\nRssAnon:\t     500 kB\nRssFile:\t     250 kB\nRssShmem:\t     250 kB\n';
  assert.deepEqual(memoryFromStatus(status), { rss: 1.024, file: 0.256, anon: 0.512 });
  assert.equal(memoryFromStatus('Name:\tnode\nVmRSS:\t 1 kB\n'), undefined);
});

test('heap figures from prom-client\'s default metrics, in MB; metrics without them give none', () => {
  const text = [
    '# HELP nodejs_heap_size_total_bytes Process heap size from Node.js in bytes.',
    'nodejs_heap_size_total_bytes 23000000',
    'nodejs_heap_size_used_bytes 20500000',
    'nodejs_external_memory_bytes 4200000',
    'nodejs_external_memory_bytes_other{x="y"} 1',
  ].join('\n');
  assert.deepEqual(heapFromMetrics(text), { heapUsed: 20.5, heapTotal: 23, external: 4.2 });
  assert.equal(heapFromMetrics('nodejs_heap_size_used_bytes 1\n'), undefined);
});

test('saga timeline: each segment from the run view\'s timestamps, in order; a saga with a retry or a compensation is left out', () => {
  const iso = (ms: number) => new Date(1_000_000 + ms).toISOString();
  const step = (name: string, start: number, end: number, attempts = 1) => ({ name, status: 'Succeeded' as const, attempts, compensationAttempts: 0, startedAt: iso(start), endedAt: iso(end) });
  const saga = (offset: number, attempts = 1) => ({
    sentAt: 1_000_000 + offset,
    receivedAt: 1_000_000 + offset + 12,
    run: { startedAt: iso(offset + 3), endedAt: iso(offset + 11), steps: [step('reserve', offset + 3, offset + 5, attempts), step('charge', offset + 6, offset + 10)] },
  });
  const rows = sagaTimeline([saga(0), saga(100), saga(200, 2)]);
  assert.deepEqual(rows.map((r) => [r.segment, r.meanMs, r.p50Ms]), [
    ['POST → run started', 3, 3],
    ['run start → reserve', 0, 0],
    ['reserve (command → reply taken)', 2, 2],
    ['reserve → charge', 1, 1],
    ['charge (command → reply taken)', 4, 4],
    ['charge → run ended', 1, 1],
    ['run ended → end event at the client', 1, 1],
  ]);
  assert.deepEqual(sagaTimeline([saga(0, 2)]), [], 'a retried step has other segments');
});

test('closed loop: exactly `clients` ops in flight until the time is up, each numbered, each latency measured', async () => {
  let inFlight = 0;
  let most = 0;
  const calls: { client: number; k: number; i: number }[] = [];
  const latencies = await closedLoop(3, 60, async (client, k, i) => {
    calls.push({ client, k, i });
    most = Math.max(most, ++inFlight);
    await sleep(5);
    inFlight--;
  });
  assert.equal(most, 3);
  assert.equal(latencies.length, calls.length);
  assert.ok(calls.length >= 3 && calls.length <= 3 * Math.ceil(60 / 5) + 3, `${calls.length} ops: each loop starts one, none starts after the time is up`);
  assert.ok(latencies.every((ms) => ms >= 4), 'each op\'s own time');
  assert.deepEqual(calls.map((c) => c.i), calls.map((_, n) => n), 'i counts over all loops');
  for (const client of [0, 1, 2]) {
    const ks = calls.filter((c) => c.client === client).map((c) => c.k);
    assert.deepEqual(ks, ks.map((_, n) => n), `client ${client} counts its own ops`);
  }
});
