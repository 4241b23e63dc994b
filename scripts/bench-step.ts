/**
 * `npm run bench:step`: what one saga step costs on a real nats-server, carried as the platform carries it
 * against carried by core request/reply — the design change issue 12's closing note weighs.
 *
 * One step, in both modes: the engine writes the run's record (compare-and-set) and sends the command; the
 * participant writes its ledger entry (compare-and-set) and answers; the engine takes the answer.
 *  - `work queues (today)`: the command is an acked publish to a work-queue stream, pulled by the participant's
 *    durable consumer; the answer is an acked publish to a second work queue, pulled by the engine's; both acked.
 *  - `request/reply`: the command is a core NATS request to the participants' queue group, the answer its reply.
 *    Only the two writes are stored; a lost command or answer is found by the engine's step timeout, and the
 *    participant's ledger makes the retry return the stored result.
 * Engine and participant run in this one process, on the platform's client path (connectNats, JetStreamPublisher,
 * kvWrite into KV buckets, buildHeaders). Printed per row: steps/s, p50/p99 of a step, and CPU per step
 * of the nats-server(s) and of this process. One server's R1 file streams (as `npm run bench` runs), then a
 * 3-server cluster's R3 ones (as `make up` deploys). Flags: --seconds S per row (3; 1 under CI=true),
 * --clients 2,32, --no-cluster. A benchmark prints figures; it fails only when a step does.
 */
import { AckPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { nuid, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { CeHeaders } from '@sagamesh/contracts';
import { getHeader, kvWrite, openBucket, type JetStreamPublisher } from '@sagamesh/runtime';
import { commandHeaders, connectAsService, measureLoop, onServers, parseSmallBenchArgs } from './lib/small-bench.ts';

const { seconds, clientCounts, cluster } = parseSmallBenchArgs('bench-step');

// The sizes of a step's messages: a run record ~1.5 KB, a command ~0.4 KB, a ledger entry and an answer ~0.3 KB.
const RECORD = 'r'.repeat(1500);
const COMMAND = 'c'.repeat(400);
const LEDGER = 'l'.repeat(250);
const REPLY = 'a'.repeat(300);
const STEP_TIMEOUT_MS = 10_000;

// Written as the platform writes its run records and ledgers: kvWrite into KV buckets, with compare-and-set.
const Buckets = { records: 'bench-step-runs', ledger: 'bench-step-ledger' };
const Subjects = {
  command: 'step.cmd.inventory.reserve',
  reply: 'step.reply.engine',
  request: 'step.rpc.inventory.reserve',
};

const correlationOf = (m: JsMsg | Msg) => (m.headers ? getHeader(m.headers, CeHeaders.correlationId) : undefined) ?? '';

interface Rig {
  nc: NatsConnection;
  js: JetStreamClient;
  pub: JetStreamPublisher;
  /** The engine's steps waiting for their answer, by run id. */
  waiting: Map<string, () => void>;
}

type Mode = { step: (rig: Rig, runId: string) => Promise<void>; serve: (rig: Rig) => Promise<() => Promise<void>> };

/** Runs `handle` on every message of a durable consumer as it comes (the closed loop bounds what is in flight); resolves to a stop function. */
async function consumeAll(rig: Rig, stream: string, durable: string, handle: (m: JsMsg) => Promise<void>): Promise<() => Promise<void>> {
  const messages: ConsumerMessages = await (await rig.js.consumers.get(stream, durable)).consume({ max_messages: 64 });
  const loop = (async () => {
    for await (const m of messages) void handle(m).catch((err: unknown) => console.error(`${durable}: ${String(err)}`));
  })();
  return async () => {
    await messages.close();
    await loop;
  };
}

const modes: Record<string, Mode> = {
  'work queues (today)': {
    async step(rig, runId) {
      await kvWrite(rig.pub, Buckets.records, runId, RECORD, 0);
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`step ${runId}: no answer within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
        rig.waiting.set(runId, () => (clearTimeout(timer), resolve()));
      });
      await rig.pub.publish(Subjects.command, COMMAND, { headers: commandHeaders(runId), msgID: `${runId}.reserve.1` });
      await answered;
    },
    async serve(rig) {
      const participant = await consumeAll(rig, 'STEP_COMMANDS', 'participant', async (m) => {
        const runId = correlationOf(m);
        await kvWrite(rig.pub, Buckets.ledger, runId, LEDGER, 0);
        await rig.pub.publish(Subjects.reply, REPLY, { headers: commandHeaders(runId), msgID: `${runId}.reserve.reply` });
        m.ack();
      });
      const engine = await consumeAll(rig, 'STEP_REPLIES', 'engine', async (m) => {
        m.ack();
        const runId = correlationOf(m);
        rig.waiting.get(runId)?.();
        rig.waiting.delete(runId);
      });
      return async () => {
        await participant();
        await engine();
      };
    },
  },
  'request/reply': {
    async step(rig, runId) {
      await kvWrite(rig.pub, Buckets.records, runId, RECORD, 0);
      await rig.pub.request(Subjects.request, COMMAND, { headers: commandHeaders(runId), timeout: STEP_TIMEOUT_MS });
    },
    async serve(rig) {
      const sub: Subscription = rig.nc.subscribe(Subjects.request, {
        queue: 'inventory',
        callback: (err, m) => {
          if (err) return console.error(`participant: ${String(err)}`);
          const runId = correlationOf(m);
          void kvWrite(rig.pub, Buckets.ledger, runId, LEDGER, 0).then(
            () => m.respond(REPLY, { headers: commandHeaders(runId) }),
            (e: unknown) => console.error(`participant: ${String(e)}`),
          );
        },
      });
      return async () => sub.drain();
    },
  },
};

async function measureOn(servers: string[], pids: number[], replicas: number) {
  const { nc, pub } = await connectAsService(servers);
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const num_replicas = replicas;
    for (const bucket of Object.values(Buckets)) await openBucket(js, bucket, { replicas });
    await jsm.streams.add({ name: 'STEP_COMMANDS', subjects: ['step.cmd.>'], num_replicas, retention: 'workqueue' });
    await jsm.streams.add({ name: 'STEP_REPLIES', subjects: ['step.reply.>'], num_replicas, retention: 'workqueue' });
    await jsm.consumers.add('STEP_COMMANDS', { durable_name: 'participant', ack_policy: AckPolicy.Explicit });
    await jsm.consumers.add('STEP_REPLIES', { durable_name: 'engine', ack_policy: AckPolicy.Explicit });
    const rig: Rig = { nc, js, pub, waiting: new Map() };
    for (const [name, mode] of Object.entries(modes)) {
      const stop = await mode.serve(rig);
      try {
        for (const clients of clientCounts) {
          const prefix = nuid.next();
          const f = await measureLoop(clients, seconds, pids, (c, k) => mode.step(rig, `${prefix}_${c}_${k}`));
          const row = [`file R${replicas}`.padEnd(7), name.padEnd(19), String(clients).padStart(7), f.perSecond.toFixed(0).padStart(7), f.p50.toFixed(2).padStart(8), f.p99.toFixed(2).padStart(8), f.serverUs.toFixed(0).padStart(13), f.selfUs.toFixed(0).padStart(13)];
          console.log(row.join('  '));
        }
      } finally {
        await stop();
      }
    }
  } finally {
    pub.close();
    await nc.close();
  }
}

console.log(`${seconds} s per row; a step = the run record written, the command, the ledger entry written, the answer taken`);
console.log(['streams', 'mode'.padEnd(19), 'clients', 'steps/s', 'p50 ms', 'p99 ms', 'server µs/step', 'Node µs/step'].join('  '));
await onServers(cluster, measureOn);
