// Feeds the explorer's run index: every progress event as the engine publishes it, and once at start the recent past from stream SAGA_EVENTS.
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { SagaEvent, Streams, Subjects, validator } from '@sagamesh/contracts';
import { decodeMessage, PoisonMessageError, type Logger } from '@sagamesh/runtime';
import type { RunIndex } from './run-index.ts';

const sagaEvent = validator(SagaEvent, 'saga event');

/**
 * Stream sequences a run takes, about: an order run keeps only its end in SAGA_EVENTS (its progress is live only,
 * see isProgressDurable), a k8s run its ~9 progress events and its end. The look-back that fills the index at start
 * is `capacity` runs' worth at this rate, so when k8s runs fill the recent past, fewer runs come back. The stream
 * keeps only each subject's latest event, so what comes back is each recent run's latest view (a run still running
 * at start comes back only if it is a k8s run, and appears with its next event otherwise).
 */
const SEQUENCES_PER_RUN = 2;
/** How long stop() waits for the look-back's consumer to close. */
const STOP_WAIT_MS = 2000;

export interface RunFeed {
  stop(): Promise<void>;
}

/**
 * Live events come from a plain subscription: the stream keeps only the latest event of each run, so a consumer
 * would miss the attempts a run went through in between (every event carries the whole run view, so a missed one
 * loses only its history, never the run's state). The look-back reads the stream once, up to where it ended at start.
 */
export function startRunFeed(opts: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; index: RunIndex; log: Logger }): RunFeed {
  const { nc, js, jsm, index, log } = opts;
  let stopping = false;
  let close: (() => Promise<void>) | undefined;
  const take = (m: Parameters<typeof decodeMessage>[0] & { subject: string }, at: Date, seq?: number) => {
    // Called from a subscription's callback too, where a throw has nowhere to go: an event that cannot be taken is logged.
    try {
      index.apply(decodeMessage(m, sagaEvent).data, at);
    } catch (err) {
      log.warn({ seq, subject: m.subject, ...(err instanceof PoisonMessageError ? { reason: err.reason } : { err }) }, 'saga event not listed');
    }
  };

  // Subscribed before the look-back starts, so nothing falls between the two; the index keeps each run's highest version.
  const live: Subscription = nc.subscribe(Subjects.allSagaEvents, { callback: (err, m: Msg) => (err ? log.warn({ err }, 'saga explorer subscription error') : take(m, new Date())) });

  const lookBack = (async () => {
    while (!stopping) {
      try {
        const { state } = await jsm.streams.info(Streams.sagaEvents.name);
        if (state.messages === 0) return;
        const until = state.last_seq;
        const consumer = await js.consumers.get(Streams.sagaEvents.name, {
          filter_subjects: [...Streams.sagaEvents.subjects],
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: Math.max(state.first_seq, until - index.capacity * SEQUENCES_PER_RUN + 1, 1),
        });
        const messages = await consumer.consume();
        close = () => messages.close().then(() => undefined);
        // stop() may have come while this consumer was being made: it closed none.
        if (stopping) return await close();
        for await (const m of messages) {
          if (m.seq <= until) take(m, m.time, m.seq);
          if (m.seq >= until || m.info.pending === 0) break;
        }
        await close();
        log.info({ runs: index.size }, 'saga explorer: recent runs read, following live');
        return;
      } catch (err) {
        if (!stopping) log.warn({ err }, 'saga explorer look-back failed; trying again');
      }
      if (!stopping) await sleep(1000);
    }
  })();

  return {
    async stop() {
      stopping = true;
      live.unsubscribe();
      // Bounded: closing a consumer the client is remaking can stay pending; the connection's drain, next in the
      // shutdown, ends it anyway, and the feed must never hold a shutdown up.
      const ended = Promise.all([close?.(), lookBack]).then(() => true);
      if (!(await Promise.race([ended, sleep(STOP_WAIT_MS, false, { ref: false })]))) log.warn({ waitedMs: STOP_WAIT_MS }, 'saga explorer look-back still closing; going on with the shutdown');
    },
  };
}
