/** The notifications service: one notification per order end event (confirmed, cancelled, failed). */
import { Buckets, Consumers, Streams } from '@sagamesh/contracts';
import { bootService, ensureKv, kvWrite, runConsumer, type Started } from '@sagamesh/kit';
import type { NotificationsConfig } from './config.ts';
import { notificationHandler, notificationSubjects } from './notifications.ts';

export type { NotificationsConfig } from './config.ts';
export { NotificationsConfigSchema } from './config.ts';

const SERVICE = 'notifications';

export function start(config: NotificationsConfig): Promise<Started> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, js, jsm, publisher }) => {
    await ensureKv(js, Buckets.notifications, { history: 1, replicas: config.JETSTREAM_REPLICAS });
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
    return { ready: () => consumer.ready() };
  });
}
