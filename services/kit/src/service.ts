import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { QuerySubjects } from '@sagamesh/contracts';
import { createHttpServer, type HttpServerOptions } from './http.ts';
import { Shutdown, type Started } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type ServiceMetrics } from './metrics.ts';
import { connectNats, declarePlatformStreams, ensureKv, whenJetStreamReady } from './nats.ts';
import { answerQueries, KvTally, runParticipant, StepLedger, type CommandHandler, type ParticipantSeams, type Tally } from './participant.ts';
import { JetStreamPublisher } from './publisher.ts';

/** The config every service has (CommonConfig's NATS_URL, LOG_LEVEL, HOST, JETSTREAM_REPLICAS) plus its PORT. */
export interface BootConfig {
  NATS_URL: string;
  LOG_LEVEL: string;
  HOST: string;
  JETSTREAM_REPLICAS: number;
  PORT: number;
}

/** What bootService hands a service's wiring: everything is up and registered for shutdown. */
export interface ServiceContext {
  service: string;
  log: Logger;
  metrics: ServiceMetrics;
  /** Register the service's own cleanups here; they run in reverse order, before NATS drains. */
  shutdown: Shutdown;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  publisher: JetStreamPublisher;
}

/** What the wiring returns: readiness (beyond the NATS connection), HTTP routes, and extra fields for the result. */
export type ServiceParts<X extends object = object> = {
  ready: () => boolean;
  routes?: HttpServerOptions['routes'];
} & X;

/**
 * The boot every JetStream service shares: logger, metrics, NATS (drained on stop), a JetStreamPublisher,
 * the platform streams, then `wire`, then the HTTP server (/readyz = NATS open and `ready()`). A start
 * that fails runs the cleanups registered so far and rethrows. Returns `{ port, stop }` plus whatever
 * `wire` returned besides `ready` and `routes`.
 */
export async function bootService<X extends object = object>(
  service: string,
  config: BootConfig,
  wire: (ctx: ServiceContext) => Promise<ServiceParts<X>>,
): Promise<Started & Omit<X, 'ready' | 'routes'>> {
  const log = createLogger(service, config.LOG_LEVEL);
  const metrics = createMetrics(service);
  const shutdown = new Shutdown(log);
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: service, log });
    shutdown.onShutdown(() => nc.drain(), 'nats');
    const js = jetstream(nc);
    const publisher = new JetStreamPublisher(nc);
    shutdown.onShutdown(() => publisher.close(), 'publisher');
    const jsm = await whenJetStreamReady('declare the platform streams', log, async () => {
      const m = await jetstreamManager(nc);
      await declarePlatformStreams(m, config.JETSTREAM_REPLICAS);
      return m;
    });

    const { ready, routes, ...extra } = await wire({ service, log, metrics, shutdown, nc, js, jsm, publisher });
    const http = createHttpServer({
      service,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => !nc.isClosed() && ready(),
      ...(routes ? { routes } : {}),
    });
    const port = await http.listen();
    // Registered last, so it closes first: probes fail while the rest drains.
    shutdown.onShutdown(() => http.close(), 'http');
    return { ...extra, port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch((e: unknown) => log.error({ err: e }, 'cleanup after a failed start failed'));
    throw err;
  }
}

/** A participant service's config: CommonConfig + PORT, its commands' concurrency and AckWait. */
export interface ParticipantServiceConfig extends BootConfig {
  CONCURRENCY: number;
  COMMAND_ACK_WAIT_MS: number;
}

export interface LedgerParticipantSpec<D> {
  /** Its KV bucket: the step ledger (one record per step key) that the tally sums. */
  bucket: string;
  commands: (ledger: StepLedger<D>) => Record<string, CommandHandler>;
  /** What one ledger record adds to the books. */
  contribution: (key: string, value: unknown) => Tally;
  /** The answer to the service's audit query, from the books' totals. */
  audit: (totals: Tally) => unknown;
}

/**
 * A saga participant whose state is a StepLedger in one KV bucket, with books (a KvTally of that
 * bucket) answering its audit query (QuerySubjects.audit(service)): payments and shipping.
 */
export function startLedgerParticipant<D>(
  service: string,
  config: ParticipantServiceConfig,
  spec: LedgerParticipantSpec<D>,
  seams: ParticipantSeams = {},
): Promise<Started> {
  return bootService(service, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    const kv = await ensureKv(js, spec.bucket, { history: 1, replicas: config.JETSTREAM_REPLICAS });

    const books = new KvTally(kv, spec.bucket, spec.contribution, log);
    shutdown.onShutdown(() => books.stop(), 'books');
    const audit = answerQueries(nc, QuerySubjects.audit(service), service, log, async () => spec.audit(await books.totals()));
    shutdown.onShutdown(() => audit.drain(), 'queries');

    const participant = await runParticipant({
      service,
      js,
      publisher,
      jsm,
      log,
      metrics,
      commands: spec.commands(new StepLedger<D>(kv, { publisher, bucket: spec.bucket })),
      concurrency: config.CONCURRENCY,
      ackWaitMs: config.COMMAND_ACK_WAIT_MS,
      replicas: config.JETSTREAM_REPLICAS,
      ...seams,
    });
    shutdown.onShutdown(() => participant.stop(), 'commands');
    return { ready: () => participant.ready() };
  });
}
