// Feeds the explorer's run index from stream SAGA_EVENTS: one ordered consumer per gateway replica, the recent past first, then live.
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { SagaEvent, Streams, Subjects, validator } from '@sagamesh/contracts';
import { decodeMessage, PoisonMessageError, type Logger } from '@sagamesh/runtime';
import type { RunIndex } from './run-index.ts';

const sagaEvent = validator(SagaEvent, 'saga event');

/**
 * Stream sequences a run takes, about (the order saga publishes 8 progress events and its end once more): the
 * look-back that fills the index at start is `capacity` runs' worth. The stream keeps only each run's latest event,
 * so what comes back is each recent run's latest view; a run whose last event is older than that is not listed.
 */
const SEQUENCES_PER_RUN = 10;
/** How long stop() waits for the consumer to close. */
const STOP_WAIT_MS = 2000;

export interface RunFeed {
  stop(): Promise<void>;
}

export function startRunFeed(opts: { js: JetStreamClient; jsm: JetStreamManager; index: RunIndex; log: Logger }): RunFeed {
  const { js, jsm, index, log } = opts;
  let stopping = false;
  let caughtUp = false; // only for the log line that says the look-back is read
  let close: (() => Promise<void>) | undefined;
  let nextSeq: number | undefined;

  const running = (async () => {
    while (!stopping) {
      try {
        if (nextSeq === undefined) {
          const { state } = (await jsm.streams.info(Streams.sagaEvents.name));
          nextSeq = Math.max(state.first_seq, state.last_seq - index.capacity * SEQUENCES_PER_RUN + 1, 1);
        }
        const consumer = await js.consumers.get(Streams.sagaEvents.name, {
          filter_subjects: [Subjects.allSagaEvents],
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: nextSeq,
        });
        const messages = await consumer.consume();
        close = () => messages.close().then(() => undefined);
        // stop() may have come while this consumer was being made (a restart after an outage): it closed the old one.
        if (stopping) {
          await close();
          break;
        }
        for await (const m of messages) {
          nextSeq = m.seq + 1;
          try {
            index.apply(decodeMessage(m, sagaEvent).data, m.time);
          } catch (err) {
            if (!(err instanceof PoisonMessageError)) throw err;
            log.warn({ seq: m.seq, reason: err.reason }, 'unreadable saga event: not listed');
          }
          if (!caughtUp && m.info.pending === 0) {
            caughtUp = true;
            log.info({ runs: index.size }, 'saga explorer: recent runs read, following live');
          }
        }
      } catch (err) {
        if (!stopping) log.warn({ err }, 'saga explorer feed failed; restarting');
      }
      if (!stopping) await sleep(1000);
    }
  })();

  return {
    async stop() {
      stopping = true;
      // Bounded: closing a consumer the client is remaking can stay pending; the connection's drain, next in the
      // shutdown, ends the loop anyway, and a feed must never hold a shutdown up.
      const ended = Promise.all([close?.(), running]).then(() => true);
      if (!(await Promise.race([ended, sleep(STOP_WAIT_MS, false, { ref: false })]))) log.warn({ waitedMs: STOP_WAIT_MS }, 'saga explorer feed still closing; going on with the shutdown');
    },
  };
}
