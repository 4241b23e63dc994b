import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createHttpServer, type HttpServerOptions } from './http.ts';
import { Shutdown, type Started } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type ServiceMetrics } from './metrics.ts';
import { connectNats, declarePlatformStreams, whileJetStreamForms } from './nats.ts';
import { JetStreamPublisher } from './publisher.ts';

/** The config every service has (CommonConfig's NATS_URL, NATS_USER, NATS_PASSWORD, LOG_LEVEL, HOST, JETSTREAM_REPLICAS) plus its PORT. */
export interface BootConfig {
  NATS_URL: string;
  NATS_USER?: string;
  NATS_PASSWORD?: string;
  LOG_LEVEL: string;
  HOST: string;
  JETSTREAM_REPLICAS: number;
  /** The store budget the platform's stream and bucket limits are shares of; default DEFAULT_STORE_MIB. */
  JETSTREAM_STORE_MIB?: number;
  PORT: number;
  SHUTDOWN_DELAY_MS?: number;
  MAX_IN_FLIGHT?: number;
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
 * The boot every process shares: logger, metrics, the HTTP server (listening at once: /livez answers while NATS and
 * JetStream come up, /readyz fails until the service is wired), NATS (drained on stop), a JetStreamPublisher, the
 * platform streams, then `wire` and its routes. A start that fails runs the cleanups registered so far, closes HTTP
 * and rethrows. Returns `{ port, stop }` plus whatever `wire` returned besides `ready` and `routes`.
 */
export async function bootService<X extends object = object>(
  service: string,
  config: BootConfig,
  wire: (ctx: ServiceContext) => Promise<ServiceParts<X>>,
  opts: { /** The NATS connection's name (default the service's): e.g. one per operator replica. */ natsName?: string } = {},
): Promise<Started & Omit<X, 'ready' | 'routes'>> {
  const log = createLogger(service, config.LOG_LEVEL);
  const metrics = createMetrics(service);
  const shutdown = new Shutdown(log);
  // Until wired, not ready. Listening this early keeps a slow JetStream (3 servers electing a leader) from
  // failing the startup probe and restarting a process that is only waiting.
  let readiness: () => boolean = () => false;
  const http = createHttpServer({
    service,
    host: config.HOST,
    port: config.PORT,
    log,
    metrics,
    ready: () => readiness(),
    startsClosed: true,
    drainDelayMs: config.SHUTDOWN_DELAY_MS ?? 0,
    ...(config.MAX_IN_FLIGHT ? { maxInFlight: config.MAX_IN_FLIGHT } : {}),
  });
  const port = await http.listen();
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: opts.natsName ?? service, log, user: config.NATS_USER, pass: config.NATS_PASSWORD });
    // Drain lets in-flight requests finish; it refuses while disconnected, and then there is nothing to drain.
    shutdown.onShutdown(() => nc.drain().catch(() => nc.close()), 'nats');
    const js = jetstream(nc);
    const publisher = new JetStreamPublisher(nc);
    shutdown.onShutdown(() => publisher.close(), 'publisher');
    const jsm = await whileJetStreamForms(
      async () => {
        const m = await jetstreamManager(nc);
        await declarePlatformStreams(m, config.JETSTREAM_REPLICAS, log, config.JETSTREAM_STORE_MIB);
        return m;
      },
      { log, what: 'declare the platform streams' },
    );

    const { ready, routes, ...extra } = await wire({ service, log, metrics, shutdown, nc, js, jsm, publisher });
    http.open(routes);
    readiness = () => !nc.isClosed() && ready();
    // Registered last, so it closes first: probes fail while the rest drains.
    shutdown.onShutdown(() => http.close(), 'http');
    return { ...extra, port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch((e: unknown) => log.error({ err: e }, 'cleanup after a failed start failed'));
    await http.close().catch((e: unknown) => log.error({ err: e }, 'closing HTTP after a failed start failed'));
    throw err;
  }
}
