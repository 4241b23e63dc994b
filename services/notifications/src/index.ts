/** The notifications service: one notification per order end event (confirmed, cancelled, failed). */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Buckets, Consumers, Streams } from '@sagamesh/contracts';
import {
  JetStreamPublisher, Shutdown, connectNats, createHttpServer, createLogger, createMetrics, declarePlatformStreams, ensureKv, kvWrite, runConsumer,
  type Started,
} from '@sagamesh/kit';
import type { NotificationsConfig } from './config.ts';
import { notificationHandler, notificationSubjects } from './notifications.ts';

export type { NotificationsConfig } from './config.ts';
export { NotificationsConfigSchema } from './config.ts';

const SERVICE = 'notifications';

export async function start(config: NotificationsConfig): Promise<Started> {
  const log = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = createMetrics(SERVICE);
  const shutdown = new Shutdown(log);
  try {
    const nc = await connectNats({ servers: config.NATS_URL, name: SERVICE, log });
    shutdown.onShutdown(() => nc.drain(), 'nats');
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await declarePlatformStreams(jsm);
    await ensureKv(js, Buckets.notifications, { history: 1 });
    const publisher = new JetStreamPublisher(nc);
    shutdown.onShutdown(() => publisher.close(), 'publisher');

    const consumer = runConsumer({
      js,
      jsm,
      stream: Streams.domainEvents.name,
      consumer: { durable: Consumers.notifications, filterSubjects: notificationSubjects },
      concurrency: config.CONCURRENCY,
      service: SERVICE,
      log,
      metrics,
      handler: notificationHandler((key, value) => kvWrite(publisher, Buckets.notifications, key, value, 0), log),
    });
    shutdown.onShutdown(() => consumer.stop(), 'order-events');

    const http = createHttpServer({
      service: SERVICE,
      host: config.HOST,
      port: config.PORT,
      log,
      metrics,
      ready: () => !nc.isClosed() && consumer.ready(),
    });
    const port = await http.listen();
    shutdown.onShutdown(() => http.close(), 'http');
    return { port, stop: () => shutdown.run() };
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
