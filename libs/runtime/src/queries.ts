/** Request/reply queries a service answers (books, products), as a queue group. */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from './logger.ts';

/**
 * Answers core-NATS requests on `subject` (queue group `queue`) with the JSON `answer()` resolves to,
 * or `{"error":{"code":"internal","message"}}` when it throws.
 */
export function answerQueries(nc: NatsConnection, subject: string, queue: string, log: Logger, answer: () => Promise<unknown>): Subscription {
  return nc.subscribe(subject, {
    queue,
    callback: (err, msg) => {
      if (err) {
        log.warn({ err, subject }, 'query subscription error');
        return;
      }
      answer().then(
        (body) => msg.respond(JSON.stringify(body)),
        (e: unknown) => {
          log.error({ err: e, subject }, 'query failed');
          msg.respond(JSON.stringify({ error: { code: 'internal', message: (e as Error)?.message ?? String(e) } }));
        },
      );
    },
  });
}
