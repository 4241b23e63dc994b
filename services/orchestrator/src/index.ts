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
import { bootService, decodeMessage, openBucket, PoisonMessageError, registerStreamUsage, runConsumer, type Started, whileJetStreamForms } from '@sagamesh/runtime';
import { serveEngineApi } from './api.ts';
import type { OrchestratorConfig } from './config.ts';
import { DefinitionStore } from './definitions.ts';
import { Engine } from './engine.ts';
import { SagaMetrics } from './metrics.ts';

export { OrchestratorConfigSchema, type OrchestratorConfig } from './config.ts';

const SERVICE = 'orchestrator';
export const BUILTIN_ORDER_FULFILLMENT = builtinDefinitionKey(ORDER_FULFILLMENT);
const replyValidator = validator(StepReply, 'step reply');

/** Starts the saga engine: run store, definitions, replies consumer, in-memory timer wake-ups, engine API, sweep, HTTP. */
export function start(config: OrchestratorConfig): Promise<Started> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    const runsKv = await openBucket(js, Buckets.sagaRuns, { ttlMs: config.RUNS_TTL_MS, replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });
    // A scrape can come while start-up still defines the built-in saga: no runs are counted before the engine exists.
    let counted: Engine | undefined;
    const sagaMetrics = new SagaMetrics(metrics.registry, { counts: (now) => counted?.counts(now) ?? new Map() });
    // A definition's counters exist at 0 from its define here, or from start-up for those stored before, not from its
    // first run (see SagaMetrics.known); another replica knows a new one from its first run there or its restart.
    const definitionsKv = await openBucket(js, Buckets.sagaDefinitions, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });
    const definitions = new DefinitionStore(definitionsKv, (key, steps) => sagaMetrics.known(key, steps));
    const builtin = await whileJetStreamForms(() => definitions.define({ key: BUILTIN_ORDER_FULFILLMENT, spec: orderFulfillmentDefinition }), {
      log,
      what: 'define the built-in saga',
    });
    log.info(builtin, 'built-in definition defined');
    // Only the metrics need it: start-up does not wait for it, nor fail with it.
    definitions.announceStored().catch((err: unknown) => log.warn({ err }, 'could not read the stored definitions; their counters appear with their first run'));
    const engine = new Engine({ js: publisher, nc, runs: runsKv, runsBucket: Buckets.sagaRuns, definitions, log, metrics: sagaMetrics, sweepGraceMs: config.SWEEP_GRACE_MS });
    counted = engine;
    // How full the platform's streams are (DEAD_LETTERS above all): one process reports it, and it is this one.
    registerStreamUsage(metrics.registry, jsm, log);
    await engine.startWatch();
    shutdown.onShutdown(() => engine.stopWatch(), 'run watch');
    shutdown.onShutdown(() => engine.stopTimers(), 'timers');

    const replies = runConsumer({
      nc,
      js,
      jsm,
      service: SERVICE,
      log,
      metrics,
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

    const api = serveEngineApi({ nc, engine, definitions, log, concurrency: config.API_CONCURRENCY });
    shutdown.onShutdown(() => api.stop(), 'engine API');

    const sweep = setInterval(() => {
      engine.sweep().then(
        (n) => n > 0 && log.info({ runs: n }, 'sweep published outboxes'),
        (err: unknown) => log.error({ err }, 'sweep failed'),
      );
    }, config.SWEEP_INTERVAL_MS);
    shutdown.onShutdown(() => clearInterval(sweep), 'sweep');

    return { ready: () => replies.ready() && engine.watching() };
  });
}
