/**
 * Rebuilds the read model: drop it (purge the KV stream, which keeps its sequence numbers growing, so
 * a writer holding an old revision conflicts instead of overwriting) and replay ORDERS into it. Only
 * the projection runs: no saga starts, no domain events. The live projector may keep running: both
 * apply events idempotently by stream sequence, under compare-and-set.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Buckets, Streams, Subjects, type RebuildResponse } from '@sagamesh/contracts';
import { type Logger, PoisonMessageError } from '@sagamesh/runtime';
import { decodeOrderEvent } from './event-store.ts';
import type { ReadModel } from './read-model.ts';

const REPLAY_CONCURRENCY = 32;
export const kvStreamName = (bucket: string) => `KV_${bucket}`;

export async function rebuildReadModel(deps: { js: JetStreamClient; jsm: JetStreamManager; readModel: ReadModel; log: Logger }): Promise<RebuildResponse> {
  const { js, jsm, readModel, log } = deps;
  await jsm.streams.purge(kvStreamName(Buckets.orderView));
  readModel.reset();
  const { last_seq: lastSeq, messages: stored } = (await jsm.streams.info(Streams.orders.name)).state;
  log.info({ lastSeq }, 'read model dropped, replaying the order stream');
  const result: RebuildResponse = { events: 0, orders: 0, lastSeq };
  if (stored === 0) return result;

  const consumer = await js.consumers.get(Streams.orders.name, { filter_subjects: [Subjects.allOrderStream] });
  const messages = await consumer.consume();
  // Orders replay in parallel; one order's events stay in stream order (its end waits for its placed).
  const tails = new Map<string, Promise<void>>();
  const running = new Set<Promise<void>>();
  let failure: unknown;
  try {
    for await (const m of messages) {
      try {
        const { rec } = decodeOrderEvent(m, m.seq);
        const orderId = rec.event.data.orderId;
        const task = (tails.get(orderId) ?? Promise.resolve()).then(async () => {
          const outcome = await readModel.project(rec);
          if (outcome.kind === 'wait') log.warn({ orderId, seq: rec.seq }, 'end event of an order never placed: skipped');
          else if (rec.event.name === 'placed') result.orders++;
          result.events++;
        });
        const tracked = task.catch((err: unknown) => {
          failure ??= err;
        }).finally(() => {
          running.delete(tracked);
          if (tails.get(orderId) === tracked) tails.delete(orderId);
        });
        tails.set(orderId, tracked);
        running.add(tracked);
      } catch (err) {
        if (!(err instanceof PoisonMessageError)) throw err;
        log.warn({ seq: m.seq, reason: err.reason }, 'poison message in the order stream: skipped');
      }
      if (running.size >= REPLAY_CONCURRENCY) await Promise.race(running);
      if (failure !== undefined || m.seq >= lastSeq || m.info.pending === 0) break;
    }
  } finally {
    await messages.close();
    await Promise.all(running);
  }
  if (failure !== undefined) throw new Error('read model rebuild failed', { cause: failure });
  log.info(result, 'read model rebuilt');
  return result;
}
