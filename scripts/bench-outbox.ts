/**
 * `npm run bench:outbox`: what an engine transition's durable writes cost on a real nats-server, written the
 * way the engine writes them (the run record with compare-and-set, then the command it emits) against one
 * atomic batch of the two (issue 12's "outbox with no relay": both in one stream, `allow_atomic`).
 *
 * Modes, each at every client count, on one server's file-backed and memory-backed streams (R1, as `make dev` and
 * the bench run them), then on a 3-server cluster's file-backed R3 streams (as `make up` deploys them):
 *  - `record, then command`: the engine today: the record written with kvWrite (compare-and-set) to a KV-shaped
 *    stream, its ack awaited, then the command on a work queue.
 *  - `batch (nats.js)`: `js.startBatch(record)` then `commit(command)`: nats.js awaits the first message's
 *    answer before it sends the commit, so two round trips.
 *  - `batch, pipelined`: the first message sent without a reply subject, the commit as the one request:
 *    one round trip.
 * All but nats.js's batch go the platform's client path (connectNats, JetStreamPublisher, buildHeaders).
 * Printed per row: writes/s (one write = a record and its command), p50/p99 of a write, and the
 * nats-servers' CPU per write (from /proc). Flags: --seconds S per row (3; 1 under CI=true),
 * --clients 2,32, --no-cluster (R1 only). A benchmark prints figures; it fails only when a write does.
 */
import { jetstream, jetstreamManager, PubHeaders, type JetStreamClient } from '@nats-io/jetstream';
import { headers, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { kvWrite, setHeader, type JetStreamPublisher } from '@sagamesh/runtime';
import { commandHeaders, connectAsService, measureLoop, onServers, parseSmallBenchArgs } from './lib/small-bench.ts';

const { seconds, clientCounts, cluster } = parseSmallBenchArgs('bench-outbox');

// Sizes of the engine's messages at a step (a run record ~1.5 KB, a command ~0.4 KB, CloudEvents headers).
const RECORD = 'r'.repeat(1500);
const COMMAND = 'c'.repeat(400);
const RUNS_PER_CLIENT = 50;

type Storage = 'file' | 'memory';
interface Target {
  nc: NatsConnection;
  js: JetStreamClient;
  pub: JetStreamPublisher;
  storage: Storage;
  replicas: number;
  /** Last stream sequence of each run's record, for the compare-and-set. */
  lastSeq: Map<string, number>;
}
type Write = (t: Target, runId: string) => Promise<void>;

/** A KV-shaped stream (one message per key) of the given storage, written as the engine writes saga-runs (kvWrite). */
const recordsBucket = (storage: Storage) => `bench-${storage}`;
const subjects = (t: Target, runId: string) => ({ record: `bench.${t.storage}.run.${runId}`, command: `bench.${t.storage}.cmd.inventory.reserve.${runId}` });
const expectSeq = (t: Target, runId: string) => ({ expect: { lastSubjectSequence: t.lastSeq.get(runId) ?? 0 } });

function batchHeaders(headers: MsgHdrs, batchId: string, sequence: number): MsgHdrs {
  setHeader(headers, 'Nats-Batch-Id', batchId);
  setHeader(headers, 'Nats-Batch-Sequence', String(sequence));
  return headers;
}

// The run record carries no headers of its own: the engine writes it with kvWrite.
const modes: Record<string, Write> = {
  async 'record, then command'(t, runId) {
    t.lastSeq.set(runId, await kvWrite(t.pub, recordsBucket(t.storage), runId, RECORD, t.lastSeq.get(runId) ?? 0));
    await t.pub.publish(`bench.${t.storage}.queue.inventory.reserve`, COMMAND, { headers: commandHeaders(runId), msgID: nuid.next() });
  },
  async 'batch (nats.js)'(t, runId) {
    const s = subjects(t, runId);
    const batch = await t.js.startBatch(s.record, RECORD, expectSeq(t, runId));
    const ack = await batch.commit(s.command, COMMAND, { headers: commandHeaders(runId) });
    t.lastSeq.set(runId, ack.seq - 1);
  },
  async 'batch, pipelined'(t, runId) {
    const s = subjects(t, runId);
    const batchId = nuid.next();
    const first = batchHeaders(headers(), batchId, 1);
    setHeader(first, PubHeaders.ExpectedLastSubjectSequenceHdr, String(t.lastSeq.get(runId) ?? 0));
    t.nc.publish(s.record, RECORD, { headers: first });
    const commit = batchHeaders(commandHeaders(runId), batchId, 2);
    setHeader(commit, 'Nats-Batch-Commit', '1');
    const reply = await t.pub.request(s.command, COMMAND, { headers: commit });
    const ack = reply.json<{ seq?: number; count?: number; error?: { description: string } }>();
    if (ack.error || ack.count !== 2 || !ack.seq) throw new Error(`batch not stored: ${JSON.stringify(ack)}`);
    t.lastSeq.set(runId, ack.seq - 1);
  },
};

async function measure(t: Target, mode: string, clients: number, pids: readonly number[]) {
  const write = modes[mode]!;
  t.lastSeq.clear();
  // Fresh run ids per row: a record's compare-and-set starts from nothing.
  const prefix = nuid.next();
  const f = await measureLoop(clients, seconds, pids, (c, k) => write(t, `${prefix}_${c}_${k % RUNS_PER_CLIENT}`));
  const row = [`${t.storage} R${t.replicas}`.padEnd(9), mode.padEnd(21), String(clients).padStart(7), f.perSecond.toFixed(0).padStart(9), f.p50.toFixed(2).padStart(8), f.p99.toFixed(2).padStart(8), f.serverUs.toFixed(0).padStart(13)];
  console.log(row.join('  '));
}

/** Creates the three streams on `storage` with `replicas`, then measures every client count and mode. */
async function measureOn(servers: string[], pids: number[], storage: Storage, replicas: number) {
  const { nc, pub } = await connectAsService(servers);
  try {
    const jsm = await jetstreamManager(nc);
    const num_replicas = replicas;
    await jsm.streams.add({ name: `KV_${recordsBucket(storage)}`, subjects: [`$KV.${recordsBucket(storage)}.>`], storage, num_replicas, max_msgs_per_subject: 1 });
    await jsm.streams.add({ name: `QUEUE_${storage}`, subjects: [`bench.${storage}.queue.>`], storage, num_replicas, retention: 'workqueue' });
    await jsm.streams.add({ name: `OUTBOX_${storage}`, subjects: [`bench.${storage}.run.>`, `bench.${storage}.cmd.>`], storage, num_replicas, max_msgs_per_subject: 1, allow_atomic: true });
    const target: Target = { nc, js: jetstream(nc), pub, storage, replicas, lastSeq: new Map() };
    for (const clients of clientCounts) for (const mode of Object.keys(modes)) await measure(target, mode, clients, pids);
  } finally {
    pub.close();
    await nc.close();
  }
}

console.log(`${seconds} s per row; a write = a run record (compare-and-set) and one command; server CPU = all servers'`);
console.log(['storage  ', 'mode'.padEnd(21), 'clients', 'writes/s', 'p50 ms', 'p99 ms', 'server µs/write'].join('  '));
await onServers(cluster, async (urls, pids, replicas) => {
  // One server: its file and memory streams; the cluster: file (what `make up` deploys).
  for (const storage of replicas === 1 ? (['file', 'memory'] as const) : (['file'] as const)) await measureOn(urls, pids, storage, replicas);
});
