/**
 * A test rig for saga participants on a real nats-server: plays the engine (publishes StepCommands,
 * reads the StepReplies JetStream stored) and asks the services' queries. Used by the participants'
 * `*.nats.test.ts` files.
 */
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type MsgRequest } from '@nats-io/jetstream';
import {
  STEP_REPLY_TYPE,
  Streams,
  Subjects,
  stepCommandType,
  type Fault,
  type RunOrigin,
  type StepCommand,
  type StepReply,
} from '@sagamesh/contracts';
import { declarePlatformStreams, publishEvent, type JetStreamClient, type JetStreamManager, type NatsConnection } from '../src/index.ts';
import { startNatsServer, waitFor, type NatsServer } from '../src/testing/index.ts';

export interface StoredReply {
  reply: StepReply;
  type: string;
  /** '' when the reply carries no trace context. */
  traceparent: string;
}

export interface Rig {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Publishes a command to `cmd.<service>.<command>` (a new Nats-Msg-Id each time unless given). */
  send(service: string, command: string, cmd: StepCommand, msgId?: string): Promise<void>;
  /** The replies of a run as JetStream stored them (de-duplicated), oldest first. */
  replies(runId: string): Promise<StoredReply[]>;
  /** Waits until the run has `n` stored replies and returns them. */
  waitReplies(runId: string, n: number, timeoutMs?: number): Promise<StepReply[]>;
  /** A core-NATS request with a JSON answer. */
  query<T>(subject: string): Promise<T>;
  /** Messages stored in a stream under a subject filter. */
  count(stream: string, subject: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startRig(): Promise<Rig> {
  const server = await startNatsServer({ jetstream: true });
  const nc = await connect({ servers: server.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await declarePlatformStreams(jsm);

  async function replies(runId: string): Promise<StoredReply[]> {
    const out: StoredReply[] = [];
    let seq = 1;
    for (;;) {
      try {
        // The server's STREAM.MSG.GET takes next_by_subj; nats.js types it only for direct gets (not enabled here).
        const req = { seq, next_by_subj: Subjects.reply(runId) } as unknown as MsgRequest;
        const m = await jsm.streams.getMessage(Streams.replies.name, req);
        if (!m) break;
        out.push({ reply: m.json<StepReply>(), type: m.header.get('ce-type'), traceparent: m.header.get('traceparent') });
        seq = m.seq + 1;
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) break;
        throw err;
      }
    }
    return out;
  }

  return {
    server,
    nc,
    js,
    jsm,
    async send(service, command, cmd, msgId) {
      await publishEvent(js, Subjects.command(service, command), {
        type: stepCommandType(service, command),
        source: 'test-engine',
        data: cmd,
        correlationId: cmd.runId,
        msgId: msgId ?? randomUUID(),
      });
    },
    replies,
    async waitReplies(runId, n, timeoutMs = 15_000) {
      const got = await waitFor(
        async () => {
          const r = await replies(runId);
          return r.length >= n ? r : undefined;
        },
        { timeoutMs, what: `${n} stored replies of run ${runId}` },
      );
      for (const { type } of got) if (type !== STEP_REPLY_TYPE) throw new Error(`reply with ce-type ${type}`);
      return got.map((r) => r.reply);
    },
    async query<T>(subject: string) {
      const m = await nc.request(subject, '', { timeout: 10_000 });
      return m.json<T>();
    },
    async count(stream, subject) {
      const info = await jsm.streams.info(stream, { subjects_filter: subject });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    },
    async stop() {
      await nc.close();
      await server.stop();
    },
  };
}

/** A StepCommand with sensible defaults. */
export function command(
  runId: string,
  step: string,
  action: 'do' | 'compensate',
  input: Record<string, unknown>,
  opts: { attempt?: number; origin?: RunOrigin; faults?: Fault[] } = {},
): StepCommand {
  return {
    runId,
    definitionKey: 'builtin.order-fulfillment',
    step,
    action,
    attempt: opts.attempt ?? 1,
    origin: opts.origin ?? 'order',
    input,
    ...(opts.faults ? { faults: opts.faults } : {}),
  };
}

/** A fault in its full shape. */
export function fault(target: string, f: Partial<Omit<Fault, 'target'>>): Fault {
  return { target, failureRate: 0, latencyMs: 0, crashAfterCommit: false, ...f };
}

/** The fake crash for crash-after-commit: the handler dies here (so it neither replies nor acks). */
export class FakeCrash extends Error {
  constructor() {
    super('fake crash after commit');
    this.name = 'FakeCrash';
  }
}
export function fakeCrash(onCrash: () => void): () => never {
  return () => {
    onCrash();
    throw new FakeCrash();
  };
}

/** Waits until a service's /readyz answers 200 (its consumers are running). */
export async function waitReady<T extends { port: number }>(svc: T): Promise<T> {
  await waitFor(async () => (await fetch(`http://127.0.0.1:${svc.port}/readyz`)).ok, { what: `/readyz of the service on port ${svc.port}` });
  return svc;
}

let runCounter = 0;
/** A fresh, valid run id. */
export const runId = (prefix = 'run') => `${prefix}-${process.pid}-${++runCounter}-${randomUUID().slice(0, 8)}`;
