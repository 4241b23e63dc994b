// A real nats-server, the engine in-process, and scripted fake participants.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  isTerminalPhase,
  STEP_REPLY_TYPE,
  StepCommand,
  Subjects,
  validator,
  type RunView,
  type SagaDefinitionSpec,
  type SagaEvent,
  type StepReply,
} from '@sagamesh/contracts';
import { type ConsumerHandle, createLogger, createMetrics, declarePlatformStreams, decodeMessage, loadConfig, publishEvent, runConsumer } from '@sagamesh/runtime';
import { EngineClient } from '@sagamesh/participant';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { OrchestratorConfigSchema, start } from '../../src/index.ts';

export const TEST_ENV = {
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  PORT: '0',
  SHUTDOWN_GRACE_MS: '5000',
  CONSUMER_ACK_WAIT_MS: '3000',
  SWEEP_INTERVAL_MS: '200',
  SWEEP_GRACE_MS: '500',
  REPLY_CONCURRENCY: '16',
};

export async function startEngine(url: string, env: Record<string, string> = {}) {
  return start(loadConfig(OrchestratorConfigSchema, { ...TEST_ENV, NATS_URL: url, ...env }));
}

export interface Rig {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  client: EngineClient;
  close(): Promise<void>;
}

export async function startRig(): Promise<Rig> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await declarePlatformStreams(jsm);
  return {
    server, nc, js, jsm,
    client: new EngineClient(nc, { timeoutMs: 5000 }),
    async close() {
      await nc.drain();
      await server.stop();
    },
  };
}

/** A three-step definition over the real participant commands, with knobs for the timing. */
export function spec(overrides: Partial<SagaDefinitionSpec> & { timeout?: string; attempts?: number } = {}): SagaDefinitionSpec {
  const { timeout = '10s', attempts = 3, ...rest } = overrides;
  const retry = { attempts, backoff: { initial: '50ms', max: '200ms', multiplier: 2 } };
  return {
    steps: [
      { name: 'reserve', action: { service: 'inventory', command: 'reserve' }, compensation: { service: 'inventory', command: 'release' }, timeout, retry },
      { name: 'charge', action: { service: 'payments', command: 'charge' }, compensation: { service: 'payments', command: 'refund' }, timeout, retry },
      { name: 'ship', action: { service: 'shipping', command: 'create' }, compensation: { service: 'shipping', command: 'cancel' }, timeout, retry },
    ],
    deadline: '60s',
    compensationRetry: { attempts: 3, backoff: { initial: '50ms', max: '200ms', multiplier: 2 } },
    ...rest,
  };
}

export type Answer = 'succeeded' | 'failed' | 'drop' | { outcome: 'succeeded' | 'failed'; copies?: number };
export interface Delivery {
  msgId: string;
  subject: string;
  command: StepCommand;
  deliveryCount: number;
  headers: Record<string, string>;
}

const commandValidator = validator(StepCommand, 'step command');

/** One consumer on cmd.> playing every participant; `script` decides each answer. */
export function startParticipants(rig: Rig, script: (cmd: StepCommand) => Answer = () => 'succeeded'): { deliveries: Delivery[]; stop(): Promise<void> } {
  const deliveries: Delivery[] = [];
  const log = createLogger('test-participants', 'warn');
  const handle: ConsumerHandle = runConsumer({
    nc: rig.nc,
    js: rig.js,
    jsm: rig.jsm,
    stream: 'COMMANDS',
    consumer: { durable: 'test-participants', filterSubjects: [Subjects.allCommands] },
    concurrency: 64,
    service: 'test',
    log,
    metrics: createMetrics('test'),
    async handler(m: JsMsg) {
      const env = decodeMessage(m, commandValidator);
      const h: Record<string, string> = {};
      for (const k of m.headers?.keys() ?? []) h[k.toLowerCase()] = m.headers!.get(k);
      const cmd = env.data;
      deliveries.push({ msgId: m.headers?.get('Nats-Msg-Id') ?? '', subject: m.subject, command: cmd, deliveryCount: m.info.deliveryCount, headers: h });
      const answer = script(cmd);
      if (answer === 'drop') return 'ack';
      const { outcome, copies = 1 } = typeof answer === 'string' ? { outcome: answer } : answer;
      const reply: StepReply = {
        runId: cmd.runId, step: cmd.step, action: cmd.action, attempt: cmd.attempt, outcome,
        ...(outcome === 'failed' ? { error: { code: 'declined', message: `${cmd.step} says no` } } : {}),
      };
      for (let i = 0; i < copies; i++) {
        await publishEvent(rig.js, Subjects.reply(cmd.runId), {
          type: STEP_REPLY_TYPE, source: 'test', data: reply, correlationId: cmd.runId,
          msgId: `${cmd.runId}.${cmd.step}.${cmd.action}.${cmd.attempt}.reply.${i}`,
        });
      }
      return 'ack';
    },
  });
  return { deliveries, stop: () => handle.stop() };
}

/** Every saga event published on saga.events.> (core subscription). */
export function recordEvents(rig: Rig): { events: SagaEvent[]; stop(): void } {
  const events: SagaEvent[] = [];
  const sub = rig.nc.subscribe(Subjects.allSagaEvents, { callback: (_e, m) => void events.push(m.json<SagaEvent>()) });
  return { events, stop: () => sub.unsubscribe() };
}

export async function waitTerminal(rig: Rig, runId: string, timeoutMs = 15_000): Promise<RunView> {
  return waitFor(
    async () => {
      const { run } = await rig.client.get({ runId });
      return isTerminalPhase(run.phase) ? run : undefined;
    },
    { timeoutMs, what: `run ${runId} to end`, intervalMs: 50 },
  );
}
