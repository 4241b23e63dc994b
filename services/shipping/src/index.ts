/** The shipping service: saga participant (create / cancel, idempotent by step key) and its audit query. */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Buckets, QuerySubjects } from '@sagamesh/contracts';
import {
  KvTally,
  Shutdown,
  StepLedger,
  answerQueries,
  connectNats,
  createHttpServer,
  createLogger,
  createMetrics,
  declarePlatformStreams,
  ensureKv,
  JetStreamPublisher,
  runParticipant,
  type ParticipantSeams,
  type Started,
} from '@sagamesh/kit';
import type { ShippingConfig } from './config.ts';
import { shippingAudit, shippingCommands, shippingContribution } from './shipping.ts';

export type { ShippingConfig } from './config.ts';
export { ShippingConfigSchema } from './config.ts';

const SERVICE = 'shipping';

export async function start(config: ShippingConfig, seams: ParticipantSeams = {}): Promise<Started> {
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
    const kv = await ensureKv(js, Buckets.shipping, { history: 1 });

    const books = new KvTally(kv, Buckets.shipping, shippingContribution, log);
    shutdown.onShutdown(() => books.stop(), 'books');
    const audit = answerQueries(nc, QuerySubjects.audit(SERVICE), SERVICE, log, async () => shippingAudit(await books.totals()));
    shutdown.onShutdown(() => audit.drain(), 'queries');

    const participant = await runParticipant({
      service: SERVICE,
      js,
      publisher,
      jsm,
      log,
      metrics,
      commands: shippingCommands(new StepLedger<never>(kv, { publisher, bucket: Buckets.shipping })),
      concurrency: config.CONCURRENCY,
      ackWaitMs: config.COMMAND_ACK_WAIT_MS,
      ...seams,
    });
    shutdown.onShutdown(() => participant.stop(), 'commands');

    const http = createHttpServer({
      service: SERVICE,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => !nc.isClosed() && participant.ready(),
    });
    const port = await http.listen();
    shutdown.onShutdown(() => http.close(), 'http');
    return { port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
