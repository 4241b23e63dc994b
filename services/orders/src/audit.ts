/** Answers `query.orders.audit` (queue group `orders`) with the books: the sum over the read model's views. */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { QuerySubjects } from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/kit';
import { SERVICE } from './event-store.ts';
import type { ReadModel } from './read-model.ts';

export function serveAudit(nc: NatsConnection, readModel: ReadModel, log: Logger): Subscription {
  return nc.subscribe(QuerySubjects.audit(SERVICE), {
    queue: SERVICE,
    callback: (err, msg) => {
      if (err) {
        log.error({ err }, 'audit subscription failed');
        return;
      }
      readModel.books().then(
        (books) => msg.respond(JSON.stringify(books)),
        (e: unknown) => {
          log.error({ err: e }, 'audit query failed');
          msg.respond(JSON.stringify({ error: { code: 'internal', message: `orders audit failed: ${(e as Error).message}` } }));
        },
      );
    },
  });
}
