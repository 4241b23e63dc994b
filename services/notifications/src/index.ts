/** The notifications service: one notification per order end event (confirmed, cancelled, failed). */
import { Buckets, Consumers, Streams } from '@sagamesh/contracts';
import { bootService, openBucket, kvWrite, runConsumer, type Started } from '@sagamesh/runtime';
import type { NotificationsConfig } from './config.ts';
import { notificationHandler, notificationSubjects } from './notifications.ts';

export type { NotificationsConfig } from './config.ts';
export { NotificationsConfigSchema } from './config.ts';

const SERVICE = 'notifications';

export function start(config: NotificationsConfig): Promise<Started> {
  return bootService(SERVICE, config, async ({ log, metrics, shutdown, nc, js, jsm, publisher }) => {
    await openBucket(js, Buckets.notifications, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });
    const consumer = runConsumer({
      nc,
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
