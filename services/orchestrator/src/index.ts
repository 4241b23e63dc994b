import { nanos } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, JetStreamApiCodes, type JetStreamManager } from '@nats-io/jetstream';
import {
  Buckets,
  builtinDefinitionKey,
  Consumers,
  ORDER_FULFILLMENT,
  orderFulfillmentDefinition,
  STEP_REPLY_TYPE,
  StepReply,
  Streams,
  Subjects,
  validator,
} from '@sagamesh/contracts';
import {
  connectNats,
  createHttpServer,
  createLogger,
  createMetrics,
  declarePlatformStreams,
  decodeMessage,
  ensureKv,
  isNotFound,
  JetStreamPublisher,
  PoisonMessageError,
  runConsumer,
  Shutdown,
  type Started,
} from '@sagamesh/kit';
import { serveEngineApi } from './api.ts';
import type { OrchestratorConfig } from './config.ts';
import { DefinitionStore } from './definitions.ts';
import { Engine } from './engine.ts';
import { SagaMetrics } from './metrics.ts';
import { TIMER_TYPE, timerValidator } from './outbox.ts';

export { OrchestratorConfigSchema, type OrchestratorConfig } from './config.ts';

const SERVICE = 'orchestrator';
export const BUILTIN_ORDER_FULFILLMENT = builtinDefinitionKey(ORDER_FULFILLMENT);
const replyValidator = validator(StepReply, 'step reply');
/** Timers are nak'd until due, so they are redelivered many times by design: never dead-letter them. */
const TIMER_MAX_DELIVER = 1_000_000_000;

/**
 * The timers consumer keeps every pending timer as an unacked message; JetStream's default
 * MaxAckPending (1000) would stall it, so it is created here with room for all of them (the kit's
 * runConsumer then finds it as wanted and leaves it alone).
 */
async function ensureTimersConsumer(jsm: JetStreamManager, ackWaitMs: number, maxAckPending: number): Promise<void> {
  const stream = Streams.timers.name;
  const durable = Consumers.engineTimers;
  try {
    const { config } = await jsm.consumers.info(stream, durable);
    if (config.max_ack_pending !== maxAckPending) await jsm.consumers.update(stream, durable, { max_ack_pending: maxAckPending });
  } catch (err) {
    if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      max_deliver: TIMER_MAX_DELIVER,
      max_ack_pending: maxAckPending,
      filter_subjects: [Subjects.allTimers],
    });
  }
}

/** Starts the saga engine: run store, definitions, replies and timers consumers, engine API, sweep, HTTP. */
export async function start(config: OrchestratorConfig): Promise<Started> {
  const log = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = createMetrics(SERVICE);
  const shutdown = new Shutdown(log);
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: SERVICE, log });
    shutdown.onShutdown(() => nc.drain(), 'nats');
    const js = jetstream(nc);
    const publisher = new JetStreamPublisher(nc);
    shutdown.onShutdown(() => publisher.close(), 'publisher');
    const jsm = await jetstreamManager(nc);
    await declarePlatformStreams(jsm);
    const runsKv = await ensureKv(js, Buckets.sagaRuns, { history: 1, ttlMs: config.RUNS_TTL_MS });
    const definitions = new DefinitionStore(await ensureKv(js, Buckets.sagaDefinitions, { history: 1 }));
    const builtin = await definitions.define({ key: BUILTIN_ORDER_FULFILLMENT, spec: orderFulfillmentDefinition });
    log.info(builtin, 'built-in definition defined');

    let engine!: Engine;
    const sagaMetrics = new SagaMetrics(metrics.registry, { counts: (now) => engine.counts(now) });
    engine = new Engine({ js: publisher, runs: runsKv, runsBucket: Buckets.sagaRuns, definitions, log, metrics: sagaMetrics, sweepGraceMs: config.SWEEP_GRACE_MS });
    await engine.startWatch();
    shutdown.onShutdown(() => engine.stopWatch(), 'run watch');
    shutdown.onShutdown(() => engine.stopTimers(), 'timers');

    const common = { js, jsm, service: SERVICE, log, metrics };
    const replies = runConsumer({
      ...common,
      stream: Streams.replies.name,
      consumer: { durable: Consumers.engineReplies, filterSubjects: [Subjects.allReplies], ackWaitMs: config.CONSUMER_ACK_WAIT_MS },
      concurrency: config.REPLY_CONCURRENCY,
      async handler(m) {
        const env = decodeMessage(m, replyValidator, [STEP_REPLY_TYPE]);
        const reply = env.data;
        if (m.subject !== Subjects.reply(reply.runId)) throw new PoisonMessageError(`a reply for run ${reply.runId} arrived on ${m.subject}`);
        const r = await engine.input(reply.runId, { type: 'reply', reply }, env.id);
        if (r === 'unknown') throw new PoisonMessageError(`no run ${reply.runId}`);
        return 'ack';
      },
    });
    shutdown.onShutdown(() => replies.stop(), 'replies consumer');

    // Timers live in the run records now; this consumer handles those an older engine published.
    await ensureTimersConsumer(jsm, config.CONSUMER_ACK_WAIT_MS, config.TIMER_MAX_ACK_PENDING);
    const timers = runConsumer({
      ...common,
      stream: Streams.timers.name,
      consumer: { durable: Consumers.engineTimers, filterSubjects: [Subjects.allTimers], ackWaitMs: config.CONSUMER_ACK_WAIT_MS, maxDeliver: TIMER_MAX_DELIVER },
      concurrency: config.TIMER_CONCURRENCY,
      async handler(m) {
        const env = decodeMessage(m, timerValidator, [TIMER_TYPE]);
        const timer = env.data;
        const remaining = timer.at - Date.now();
        if (remaining > 0) return { nak: remaining };
        // A timer of a run that no longer exists (expired record) has nothing to do.
        await engine.input(timer.runId, { type: 'timer', timer }, env.id);
        return 'ack';
      },
    });
    shutdown.onShutdown(() => timers.stop(), 'timers consumer');

    const api = serveEngineApi({ nc, engine, definitions, log, concurrency: config.API_CONCURRENCY });
    shutdown.onShutdown(() => api.stop(), 'engine API');

    const sweep = setInterval(() => {
      engine.sweep().then(
        (n) => n > 0 && log.info({ runs: n }, 'sweep published outboxes'),
        (err: unknown) => log.error({ err }, 'sweep failed'),
      );
    }, config.SWEEP_INTERVAL_MS);
    shutdown.onShutdown(() => clearInterval(sweep), 'sweep');

    const http = createHttpServer({
      service: SERVICE,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => !nc.isClosed() && replies.ready() && timers.ready() && engine.watching(),
    });
    const port = await http.listen();
    // Registered last, so it closes first: probes fail while the rest drains.
    shutdown.onShutdown(() => http.close(), 'http');
    return { port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
