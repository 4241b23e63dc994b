/**
 * `npm run bench`: the platform on one nats-server, measured in one run.
 *  1. Completed order sagas/s and p50/p99 saga latency (POST /api/orders → the saga's end event, read
 *     on saga.ended.order.<id>, the copy the engine publishes with the end on saga.events.order.<id>)
 *     at a fixed concurrency, closed loop.
 *  2. The JetStream operations one saga costs, counted from the server's own statistics (/jsz, /varz).
 *  3. The raw rate of the same nats-server with `nats bench`: acked JetStream publishes and core
 *     request/reply, at the same concurrency.
 *  4. The ratio: saga rate ÷ (acked-publish rate ÷ JetStream publishes per saga).
 *  5. Where the time goes: CPU seconds per process per saga, and the hottest functions of the
 *     hottest Node process (V8 CPU profile).
 *  6. The low-load latency (2 clients, a short phase before the loaded one) next to the loaded one, and where a
 *     low-load saga's time goes (the engine's step timestamps in each end event's run view).
 *  7. The RSS of every process of the platform at the end of the loaded run and at idle (once its CPU has
 *     settled), any process idling above 100 MB flagged.
 * Flags: --concurrency N (32) --seconds S (20; 8 under CI=true) --no-profile --profile-of SERVICE (default: the hottest)
 * Under CI=true every phase is shorter (the low-load phase, the wait for idle), so the run stays short.
 * A benchmark prints figures; it fails only if the platform misbehaves, never on a target.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { CeHeaders, Catalogue, SagaEndSubjects, isSagaEndEvent, parseCeType, type SagaEvent } from '@sagamesh/contracts';
import http from 'node:http';
import { IDLE_RSS_LIMIT_MB, allocatorOf, closedLoop, cpuSeconds, heapFromMetrics, type HeapFigures, memoryOf, natsBenchRate, natsCliArgs, sagaTimeline, summarize, type LatencySummary, type SagaSample } from './lib/bench-figures.ts';
import { ApiError } from './lib/client.ts';
import { startPlatform, PLATFORM_SERVICES, type Platform } from './lib/platform.ts';
import { ensureTools, toolPath } from './lib/tools.ts';

const ci = process.env.CI === 'true';
const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: ci ? '8' : '20' },
    'no-profile': { type: 'boolean', default: false },
    'profile-of': { type: 'string' },
  },
});
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
if (!(Number.isInteger(concurrency) && concurrency >= 1) || !(seconds > 0)) throw new Error('--concurrency must be an integer ≥ 1 and --seconds > 0');
const profile = !args['no-profile'];
const lowLoad = { clients: 2, seconds: ci ? 2 : 5 };
const warmUp = { clients: concurrency, seconds: ci ? 1 : 3 };
/**
 * Idle = each process of the platform used under `busyShare` of a core for `quietSeconds` in a row, waited for at most
 * `maxSeconds` (the V8 profiler's sampling costs each Node process ~3 % of a core on its own).
 */
const idle = { quietSeconds: ci ? 2 : 3, maxSeconds: ci ? 6 : 20, busyShare: 0.05 };
const say = (m: string) => console.log(`[bench] ${m}`);
const platformProcesses = [...PLATFORM_SERVICES, 'nats-server'] as const;

await ensureTools(['nats-server', 'nats']);
const profDir = mkdtempSync(path.join(tmpdir(), 'sagamesh-prof-'));
say(`starting the platform (log level warn${profile ? ', V8 CPU profiles on' : ''})`);
const platform: Platform = await startPlatform({
  ports: 'free',
  env: { all: { LOG_LEVEL: 'warn', ...(profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir}` } : {}) } },
  onLog: (s, l) => l.includes('"level":50') && console.error(`[${s}] ${l}`),
}).catch((err: unknown) => {
  rmSync(profDir, { recursive: true, force: true });
  throw err;
});

try {
  const placeOrder = orderPlacer(platform.gatewayUrl, platform.apiKey, concurrency);
  const nc = await connect({ servers: platform.natsUrl, name: 'bench', ...platform.natsAdmin });
  const waiters = new Map<string, (phase: string) => void>();
  // An end event can in principle beat the POST's response: keep those until their waiter comes.
  const endedEarly = new Map<string, string>();
  // The ends only: the progress messages would cost this process (on the same 2 cores) 4 more messages a saga.
  const sub = nc.subscribe(SagaEndSubjects.endedOf('order'));
  // At low load only (decoding every end would cost this process under load): each end's run view, for the timeline.
  let timeline: Map<string, Omit<SagaSample, 'sentAt'>> | undefined;
  void (async () => {
    for await (const m of sub) {
      const name = parseCeType(m.headers?.get(CeHeaders.type) ?? '')?.name ?? '';
      if (isSagaEndEvent(name)) {
        const runId = m.subject.slice(SagaEndSubjects.endedOf('order').length - 1);
        timeline?.set(runId, { receivedAt: Date.now(), run: m.json<SagaEvent>().run });
        const waiter = waiters.get(runId);
        if (waiter) waiter(name);
        else endedEarly.set(runId, name);
        waiters.delete(runId);
      }
    }
  })();

  const skus = Catalogue.filter((c) => c.initial > 1000).map((c) => c.sku);
  const timelineSamples: SagaSample[] = [];
  const oneSaga = async (_client: number, _k: number, i: number): Promise<void> => {
    const sentAt = Date.now();
    let resolveEnd!: (p: string) => void;
    const ended = new Promise<string>((r) => (resolveEnd = r));
    const id = await placeOrder({ customerId: `bench-${i % 100}`, items: [{ sku: skus[i % skus.length]!, quantity: 1 }] });
    const early = endedEarly.get(id);
    if (early) (endedEarly.delete(id), resolveEnd(early));
    else waiters.set(id, resolveEnd);
    const timeout = setTimeout(() => resolveEnd('timeout'), 30_000);
    const phase = await ended;
    clearTimeout(timeout);
    if (phase === 'timeout') throw new Error(`saga ${id} did not end within 30 s`);
    const seen = timeline?.get(id);
    if (seen) (timeline!.delete(id), timelineSamples.push({ sentAt, ...seen }));
  };

  // By time at full concurrency: 100 sagas left the low-load figures to code V8 had not optimised yet (p50 12.8 ms
  // after them, 9.5 ms in a steady 2-client run of 10 s).
  say(`warm-up: ${warmUp.clients} concurrent clients for ${warmUp.seconds} s`);
  await closedLoop(warmUp.clients, warmUp.seconds * 1000, oneSaga);

  say(`low load: ${lowLoad.clients} concurrent clients for ${lowLoad.seconds} s (closed loop)`);
  const lowT0 = performance.now();
  timeline = new Map();
  const low = summarize(await closedLoop(lowLoad.clients, lowLoad.seconds * 1000, oneSaga));
  timeline = undefined;
  const lowRate = low.count / ((performance.now() - lowT0) / 1000);

  const jsBefore = await serverStats(platform);
  const cpuBefore = cpuTimes(platform);
  say(`measuring: ${concurrency} concurrent clients for ${seconds} s (closed loop)`);
  const t0 = performance.now();
  const latencies = await closedLoop(concurrency, seconds * 1000, oneSaga, (done) => say(`  ${done} sagas so far`));
  const elapsed = (performance.now() - t0) / 1000;
  const jsAfter = await serverStats(platform);
  const cpuAfter = cpuTimes(platform);
  const memoryEnd = memoryOfPlatform(platform);
  const backlog = await consumerBacklog(platform);
  await nc.drain();
  const rssIdle = await rssAtIdle(platform);

  const sagas = latencies.length;
  const sagaRate = sagas / elapsed;
  const loaded = summarize(latencies);
  const jsPublishesPerSaga = (jsAfter.storedMessages - jsBefore.storedMessages) / sagas;
  const jsApiPerSaga = (jsAfter.apiCalls - jsBefore.apiCalls) / sagas;
  const inMsgsPerSaga = (jsAfter.inMsgs - jsBefore.inMsgs) / sagas;
  const storage = storagePerSaga(jsBefore.streams, jsAfter.streams, sagas);

  say('raw JetStream rate of the same nats-server (nats bench)');
  const pubRate = natsBench(platform, ['bench', 'js', 'pub', 'sync', 'bench.sagamesh', '--msgs', '40000', '--clients', String(concurrency), '--create', '--purge', '--no-progress', '--stream', 'BENCH']);
  const reqRate = await natsBenchRequestReply(platform, concurrency);

  const jsLimit = pubRate / jsPublishesPerSaga;
  const ratio = sagaRate / jsLimit;
  const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(`
== sagamesh benchmark (${new Date().toISOString()}, ${concurrency} concurrent clients, ${f(elapsed, 1)} s) ==
completed order sagas      ${f(sagas)} (${f(sagaRate, 1)} sagas/s)     goal 1,000 sagas/s
saga latency               ${latencyLine(loaded)}     goal p99 < 50 ms
  at low load (${lowLoad.clients} clients)   ${latencyLine(low)}   (${f(low.count)} sagas, ${f(lowRate, 1)} sagas/s in ${lowLoad.seconds} s)     goal p50 ≤ 10 ms
${sagaTimeline(timelineSamples).map((r) => `    ${r.segment.padEnd(46)} mean ${f(r.meanMs, 1).padStart(5)} ms   p50 ${f(r.p50Ms).padStart(3)} ms`).join('\n')}
JetStream cost per saga    ${f(jsPublishesPerSaga, 1)} acked publishes (stream + KV writes), ${f(jsApiPerSaga, 1)} JS API calls, ${f(inMsgsPerSaga, 1)} messages into the server
nats bench (same server)   ${f(pubRate)} acked JetStream publishes/s, ${f(reqRate)} core request/reply/s
JetStream limit for sagas  ${f(jsLimit, 1)} sagas/s  (= ${f(pubRate)} ÷ ${f(jsPublishesPerSaga, 1)})
ratio                      ${f(ratio * 100, 1)} % of the JetStream limit     goal ≥ 40 %
backlog at the end         ${backlog.length === 0 ? 'none (every consumer kept up)' : backlog.join(', ')}
bytes stored per saga      ${f(storage.total)} B in all streams and buckets (README "Storage" sizes the volume from these)`);
  for (const r of storage.rows) {
    const fits = r.maxBytes > 0 && r.perSaga > 0 ? `its limit ${f(r.maxBytes / 2 ** 20)} MiB holds ${f(r.maxBytes / r.perSaga)} sagas` : r.maxBytes > 0 ? `limit ${f(r.maxBytes / 2 ** 20)} MiB` : 'no byte limit';
    console.log(`  ${r.name.padEnd(22)} ${f(r.perSaga).padStart(7)} B/saga ${f(r.msgsPerSaga, 1).padStart(5)} msgs/saga   ${f(r.bytes / 2 ** 10).padStart(9)} KiB now   ${fits}`);
  }

  console.log('\nwhere the time goes (CPU seconds during the measured run):');
  const rows = Object.entries(cpuAfter)
    .map(([name, cpu]) => ({ name, cpu: cpu - (cpuBefore[name] ?? 0) }))
    .sort((a, b) => b.cpu - a.cpu);
  const totalCpu = rows.reduce((a, r) => a + r.cpu, 0);
  for (const r of rows) console.log(`  ${r.name.padEnd(14)} ${f(r.cpu, 2).padStart(7)} s  ${f((r.cpu / totalCpu) * 100, 1).padStart(5)} %  ${f((r.cpu / sagas) * 1e6, 0).padStart(6)} µs/saga`);
  const cores = availableParallelism();
  console.log(`  ${'total'.padEnd(14)} ${f(totalCpu, 2).padStart(7)} s of ${f(elapsed * cores, 1)} s available on ${cores} cores (${f((totalCpu / (elapsed * cores)) * 100, 0)} % busy)`);

  console.log(`\nresident memory (RSS, MB) at the end of the loaded run and at idle (${rssIdle.settled ? `settled after ${f(rssIdle.waited, 0)} s` : `not settled within ${idle.maxSeconds} s`}${profile ? '; the V8 profiler adds to both' : ''}), and CPU at idle;`);
  console.log('  the idle RSS in parts: file-backed (the node binary\'s pages, shared) + anonymous, of which the V8 heap (in use, committed) and its external memory (Buffers):');
  const heaps = await heapsAtIdle(platform);
  for (const name of platformProcesses) {
    const atIdle = rssIdle.memory[name]?.rss;
    const over = name !== 'nats-server' && atIdle !== undefined && atIdle > IDLE_RSS_LIMIT_MB ? `   over ${IDLE_RSS_LIMIT_MB} MB at idle` : '';
    const parts = rssIdle.memory[name];
    const heap = heaps[name];
    const alloc = name === 'nats-server' ? undefined : allocatorOf(platform.pid(name));
    const made = parts ? `   = file ${mb(parts.file)} + anon ${mb(parts.anon)}${heap ? ` (V8 heap ${mb(heap.heapUsed)} in use of ${mb(heap.heapTotal)}, external ${mb(heap.external)})` : ''}${alloc ? `, ${alloc}` : ''}` : '';
    console.log(`  ${name.padEnd(14)} ${mb(memoryEnd[name]?.rss).padStart(7)} end   ${mb(atIdle).padStart(7)} idle   ${f(rssIdle.cpuShare[name]! * 100, 0).padStart(3)} % of a core${made}${over}`);
  }
  const hottest = args['profile-of'] ?? rows.find((r) => r.name !== 'nats-server' && r.name !== 'bench')?.name;
  await platform.stop();
  if (profile && hottest) printProfile(profDir, platform, hottest);
} catch (err) {
  await platform.stop();
  throw err;
} finally {
  rmSync(profDir, { recursive: true, force: true });
}

/**
 * POST /api/orders over keep-alive connections (node:http): the load generator shares the 2 cores with
 * the platform, and fetch costs several times the CPU per request.
 */
function orderPlacer(baseUrl: string, apiKey: string, sockets: number): (order: unknown) => Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const url = new URL('/api/orders', baseUrl);
  return (order) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(order);
      const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
      const req = http.request(url, { method: 'POST', headers, agent, timeout: 30_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('error', reject);
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: the error shows the text
          }
          if (res.statusCode !== 202) return reject(new ApiError(res.statusCode ?? 0, parsed, 'POST /api/orders'));
          resolve((parsed as { orderId: string }).orderId);
        });
      });
      req.on('timeout', () => req.destroy(new Error('POST /api/orders: no answer within 30 s')));
      req.on('error', reject);
      req.end(body);
    });
}

function latencyLine(l: LatencySummary): string {
  const ms = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  return `p50 ${ms(l.p50)} ms   p99 ${ms(l.p99)} ms   max ${ms(l.max)} ms`;
}

function mb(n: number | undefined): string {
  return n === undefined ? 'gone' : n.toFixed(1);
}

function memoryOfPlatform(p: Platform): Record<string, ReturnType<typeof memoryOf>> {
  return Object.fromEntries(platformProcesses.map((s) => [s, memoryOf(p.pid(s))]));
}

/**
 * RSS once the platform is idle: every process's CPU has stayed near zero for a few seconds (timers, GC, sweeps
 * settle). With each process's share of a core in the last second.
 */
async function rssAtIdle(p: Platform): Promise<{ memory: Record<string, ReturnType<typeof memoryOf>>; cpuShare: Record<string, number>; settled: boolean; waited: number }> {
  const cpu = () => Object.fromEntries(platformProcesses.map((s) => [s, cpuSeconds(p.pid(s))]));
  say(`waiting for the platform to idle (at most ${idle.maxSeconds} s)`);
  let quiet = 0;
  let waited = 0;
  let last = cpu();
  let share: Record<string, number> = {};
  while (quiet < idle.quietSeconds && waited < idle.maxSeconds) {
    await new Promise((r) => setTimeout(r, 1000));
    waited++;
    const now = cpu();
    share = Object.fromEntries(platformProcesses.map((s) => [s, now[s]! - last[s]!]));
    const busiest = Object.entries(share).sort((a, b) => b[1] - a[1])[0]!;
    quiet = busiest[1] < idle.busyShare ? quiet + 1 : 0;
    if (waited % 5 === 0) say(`  ${waited} s: busiest ${busiest[0]} at ${(busiest[1] * 100).toFixed(0)} % of a core in the last second`);
    last = now;
  }
  return { memory: memoryOfPlatform(p), cpuShare: share, settled: quiet >= idle.quietSeconds, waited };
}

/** Each service's heap from its /metrics (read after the RSS: a scrape allocates). */
async function heapsAtIdle(p: Platform): Promise<Record<string, HeapFigures | undefined>> {
  const entries = await Promise.all(PLATFORM_SERVICES.map(async (s) => {
    try {
      const res = await fetch(`http://127.0.0.1:${p.ports[s]}/metrics`);
      return [s, res.ok ? heapFromMetrics(await res.text()) : undefined] as const;
    } catch {
      return [s, undefined] as const;
    }
  }));
  return Object.fromEntries(entries);
}


interface StreamBytes {
  name: string;
  bytes: number;
  maxBytes: number;
  /** Messages ever stored (last sequence): a work queue's deleted ones count too. */
  stored: number;
}

async function serverStats(p: Platform): Promise<{ storedMessages: number; apiCalls: number; inMsgs: number; streams: StreamBytes[] }> {
  const jsz = (await (await fetch(`${p.natsMonitorUrl}/jsz?streams=true&config=true`)).json()) as {
    api: { total: number };
    account_details?: { stream_detail?: { name: string; state: { last_seq: number; bytes: number }; config?: { max_bytes?: number } }[] }[];
  };
  const varz = (await (await fetch(`${p.natsMonitorUrl}/varz`)).json()) as { in_msgs: number };
  const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
  return {
    storedMessages: streams.reduce((a, s) => a + s.state.last_seq, 0),
    apiCalls: jsz.api.total,
    inMsgs: varz.in_msgs,
    streams: streams.map((s) => ({ name: s.name, bytes: s.state.bytes, maxBytes: s.config?.max_bytes ?? -1, stored: s.state.last_seq })),
  };
}

/** Bytes and messages each stream (KV buckets are streams KV_<bucket>) gained per saga during the measured run, largest first. */
function storagePerSaga(before: StreamBytes[], after: StreamBytes[], sagas: number): { total: number; rows: (StreamBytes & { perSaga: number; msgsPerSaga: number })[] } {
  const was = new Map(before.map((s) => [s.name, s]));
  const rows = after
    .map((s) => ({ ...s, perSaga: (s.bytes - (was.get(s.name)?.bytes ?? 0)) / sagas, msgsPerSaga: (s.stored - (was.get(s.name)?.stored ?? 0)) / sagas }))
    .sort((a, b) => b.perSaga - a.perSaga || b.msgsPerSaga - a.msgsPerSaga);
  return { total: rows.reduce((a, r) => a + r.perSaga, 0), rows };
}

/** Consumers with messages not yet delivered when the measured run ended: work a rate must not leave behind. */
async function consumerBacklog(p: Platform): Promise<string[]> {
  const jsz = (await (await fetch(`${p.natsMonitorUrl}/jsz?consumers=true`)).json()) as {
    account_details?: { stream_detail?: { name: string; consumer_detail?: { name: string; num_pending: number; config?: { durable_name?: string } }[] }[] }[];
  };
  const consumers = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).flatMap((s) => (s.consumer_detail ?? []).map((c) => ({ ...c, stream: s.name })));
  // Durable consumers only: the ephemeral ones are watches and readers, not work queues.
  return consumers.filter((c) => c.config?.durable_name && c.num_pending > 0).map((c) => `${c.stream}/${c.name} ${c.num_pending}`);
}

/** CPU seconds per process of the platform, and of the bench itself. */
function cpuTimes(p: Platform): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(platformProcesses.map((s) => [s, cpuSeconds(p.pid(s))]));
  out.bench = cpuSeconds(process.pid);
  return out;
}

function natsBench(p: Platform, benchArgs: string[]): number {
  const res = spawnSync(toolPath('nats'), [...natsCliArgs(p.natsUrl, p.natsAdmin), ...benchArgs], { encoding: 'utf8' });
  const rate = natsBenchRate(res.stdout + res.stderr);
  if (rate === undefined) throw new Error(`nats ${benchArgs.join(' ')} printed no rate:\n${res.stdout}${res.stderr}`);
  return rate;
}

async function natsBenchRequestReply(p: Platform, clients: number): Promise<number> {
  const server = spawn(toolPath('nats'), [...natsCliArgs(p.natsUrl, p.natsAdmin), 'bench', 'service', 'serve', 'bench.rr', '--clients', '2', '--no-progress'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  try {
    return natsBench(p, ['bench', 'service', 'request', 'bench.rr', '--msgs', '40000', '--clients', String(clients), '--no-progress']);
  } finally {
    server.kill('SIGTERM');
  }
}

/** The top self-time functions of one service's V8 CPU profile (written when it exited). */
function printProfile(dir: string, p: Platform, service: string): void {
  const pid = p.pid(service as (typeof PLATFORM_SERVICES)[number]);
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const file = files.find((f) => pid && f.includes(`.${pid}.`)) ?? files[0];
  if (!file) return void console.log(`\n(no CPU profile was written for ${service})`);
  const prof = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }[];
    samples: number[];
  };
  const original = sourcePositions();
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const bySource = new Map<string, number>();
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const id of prof.samples) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const cf = original(frame);
    const source = cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(services|operator|libs)\//, '$1/');
    count(self, `${cf.functionName || '(anonymous)'} ${source ? `${source}:${cf.lineNumber + 1}` : ''}`.trim());
    // By package (node_modules) or project file; Node's own code and V8's states under their own names.
    count(bySource, cf.url.includes('node_modules/') ? source.split('/').slice(0, source.startsWith('@') ? 2 : 1).join('/') : source || `(${cf.functionName || 'native'})`);
  }
  const total = prof.samples.length;
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, c]) => `  ${((c / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
  console.log(`\n${args['profile-of'] ? 'Node process' : 'hottest Node process'}: ${service} — top functions by self time (whole run, ${total} samples):`);
  for (const line of top(self, 15)) console.log(line);
  console.log(`self time by package or file:`);
  for (const line of top(bySource, 12)) console.log(line);
}

/**
 * Maps a profile's call frame in a workload bundle (scripts/lib/build.ts) to our source file and line, through the
 * bundle's source map; any other frame as it is.
 */
function sourcePositions(): <F extends { url: string; lineNumber: number; columnNumber: number }>(frame: F) => F {
  const maps = new Map<string, SourceMap | undefined>();
  const mapOf = (bundle: string) => {
    if (!maps.has(bundle)) {
      try {
        maps.set(bundle, new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8'))));
      } catch {
        maps.set(bundle, undefined);
      }
    }
    return maps.get(bundle);
  };
  return (frame) => {
    if (!frame.url.startsWith('file://') || !frame.url.endsWith('.mjs')) return frame;
    const bundle = fileURLToPath(frame.url);
    const entry = mapOf(bundle)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (!entry || !('originalSource' in entry)) return frame;
    const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(bundle), entry.originalSource);
    return { ...frame, url: pathToFileURL(source).href, lineNumber: entry.originalLine };
  };
}
