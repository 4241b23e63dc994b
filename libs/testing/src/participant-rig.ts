/**
 * A test rig for saga participants on a real nats-server: plays the engine (publishes StepCommands,
 * reads the StepReplies JetStream stored) and asks the services' queries. Used by the participants'
 * `*.nats.test.ts` files, with the service under test, through `useParticipantService`.
 */
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { JetStreamApiCodes, JetStreamApiError, type MsgRequest } from '@nats-io/jetstream';
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
import { declarePlatformStreams, loadConfig, publishEvent, type Started } from '@sagamesh/runtime';
import { lateNats, type Nats, startNats } from './nats-fixture.ts';
import { waitFor } from './nats-server.ts';

export interface StoredReply {
  reply: StepReply;
  type: string;
  /** '' when the reply carries no trace context. */
  traceparent: string;
}

export interface Rig extends Readonly<Nats> {
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
}

/** The rig on the nats-server `get()` returns at each call (where the caller declared the platform's streams). */
function rigOn(get: () => Nats | undefined): Rig {
  const nats = lateNats(get, 'the participant rig', {});
  async function replies(runId: string): Promise<StoredReply[]> {
    const out: StoredReply[] = [];
    let seq = 1;
    for (;;) {
      try {
        // The server's STREAM.MSG.GET takes next_by_subj; nats.js types it only for direct gets (not enabled here).
        const req = { seq, next_by_subj: Subjects.reply(runId) } as unknown as MsgRequest;
        const m = await nats.jsm.streams.getMessage(Streams.replies.name, req);
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

  return lateNats<Omit<Rig, keyof Nats>>(get, 'the participant rig', {
    async send(service, command, cmd, msgId) {
      await publishEvent(nats.js, Subjects.command(service, command), {
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
      const m = await nats.nc.request(subject, '', { timeout: 10_000 });
      return m.json<T>();
    },
    async count(stream, subject) {
      const info = await nats.jsm.streams.info(stream, { subjects_filter: subject });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    },
  });
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

type ConfigSchema = Parameters<typeof loadConfig>[0];
/** A participant service's `start`: its config, and the seam a test crashes it through. */
type StartParticipant<S extends ConfigSchema> = (config: ReturnType<typeof loadConfig<S>>, seams?: { crash?: () => never }) => Promise<Started>;

/** The fake crashes of a service restarted by `restartCrashing`. */
export interface FakeCrashes {
  /** How many times the handler died after its commit. */
  readonly count: number;
  /** Waits for the first crash, then stops the service (the crashed process would be gone): no reply, no ack. */
  happened(): Promise<void>;
}

export interface ParticipantUnderTest<S extends ConfigSchema> {
  /** The rig on the nats-server the service runs on (usable from the tests on; the after hook stops it). */
  readonly rig: Rig;
  /** Another replica, ready; the caller stops it. */
  startReplica(env?: NodeJS.ProcessEnv): Promise<Started>;
  /** Stops the service and starts it again, ready, with `env` on top of the test config. */
  restart(env?: NodeJS.ProcessEnv): Promise<void>;
  /** Restarts the service so that a crash-after-commit fault kills its handler (a FakeCrash). */
  restartCrashing(): Promise<FakeCrashes>;
}

/**
 * A participant service on a rig, for one test file: the rig and the service start (ready) in a `before`
 * hook registered by this call and stop in an `after` hook. `env` is the file's config on top of the defaults.
 */
export function useParticipantService<S extends ConfigSchema>(schema: S, start: StartParticipant<S>, env: NodeJS.ProcessEnv = {}): ParticipantUnderTest<S> {
  let nats: Awaited<ReturnType<typeof startNats>> | undefined;
  let svc: Started | undefined;
  const rig = rigOn(() => nats);
  /** The service's config on the rig: silent, on a free port, fault injection on; the file's `env` and `more` on top. */
  const config = (more: NodeJS.ProcessEnv = {}) =>
    loadConfig(schema, { NATS_URL: rig.server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', FAULT_INJECTION: 'true', ...env, ...more });
  const stopService = async () => {
    await svc?.stop();
    svc = undefined;
  };
  const restart = async (more: NodeJS.ProcessEnv = {}, seams: { crash?: () => never } = {}) => {
    await stopService();
    svc = await waitReady(await start(config(more), seams));
  };
  before(async () => {
    nats = await startNats();
    await declarePlatformStreams(nats.jsm);
    await restart();
  });
  after(async () => {
    await stopService();
    await nats?.stop();
  });
  return {
    rig,
    startReplica: async (more) => waitReady(await start(config(more))),
    restart: (more) => restart(more),
    async restartCrashing() {
      let count = 0;
      await restart({}, { crash: fakeCrash(() => count++) });
      return {
        get count() {
          return count;
        },
        async happened() {
          await waitFor(() => count >= 1, { what: 'the crash after commit' });
          await stopService();
        },
      };
    },
  };
}
