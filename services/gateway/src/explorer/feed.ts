// Feeds the explorer's run index while a live list is open: every progress event as the engine publishes it, and first the recent past from stream SAGA_EVENTS.
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
/** How long stopping to follow waits for the look-back's consumer to close. */
const STOP_WAIT_MS = 2000;

export interface RunFeed {
  /**
   * A live list's interest, held while it is open (the returned function ends it). The feed follows the events only
   * while somebody watches, and `idleMs` after the last one left: nobody else reads them, and decoding every run's
   * progress was a fifth to a third of the gateway's CPU per saga (issue 12). It follows again, look-back first, at
   * the next interest.
   */
  watch(): () => void;
  stop(): Promise<void>;
}

interface Following {
  stopping: boolean;
  live: Subscription;
  lookBack: Promise<void>;
  close?: () => Promise<void>;
}

/**
 * Live events come from a plain subscription: the stream keeps only the latest event of each run, so a consumer
 * would miss the attempts a run went through in between (every event carries the whole run view, so a missed one
 * loses only its history, never the run's state). The look-back reads the stream once, up to where it ended when the
 * feed began following. The index keeps what it holds between two periods of following: a run that went on
 * meanwhile comes back at its latest version (from the look-back, or with its next event), its history in between
 * marked incomplete.
 */
export function startRunFeed(opts: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; index: RunIndex; log: Logger; idleMs: number }): RunFeed {
  const { nc, js, jsm, index, log } = opts;
  let watchers = 0;
  let following: Following | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const take = (m: Parameters<typeof decodeMessage>[0] & { subject: string }, at: Date, seq?: number) => {
    // Called from a subscription's callback too, where a throw has nowhere to go: an event that cannot be taken is logged.
    try {
      index.apply(decodeMessage(m, sagaEvent).data, at);
    } catch (err) {
      log.warn({ seq, subject: m.subject, ...(err instanceof PoisonMessageError ? { reason: err.reason } : { err }) }, 'saga event not listed');
    }
  };

  function follow(): Following {
    // Subscribed before the look-back starts, so nothing falls between the two; the index keeps each run's highest version.
    const f: Following = {
      stopping: false,
      live: nc.subscribe(Subjects.allSagaEvents, { callback: (err, m: Msg) => (err ? log.warn({ err }, 'saga explorer subscription error') : take(m, new Date())) }),
      lookBack: Promise.resolve(),
    };
    f.lookBack = (async () => {
      while (!f.stopping) {
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
          f.close = () => messages.close().then(() => undefined);
          // unfollow() may have come while this consumer was being made: it closed none.
          if (f.stopping) return await f.close();
          for await (const m of messages) {
            if (m.seq <= until) take(m, m.time, m.seq);
            if (m.seq >= until || m.info.pending === 0) break;
          }
          await f.close();
          log.info({ runs: index.size }, 'saga explorer: recent runs read, following live');
          return;
        } catch (err) {
          if (!f.stopping) log.warn({ err }, 'saga explorer look-back failed; trying again');
        }
        if (!f.stopping) await sleep(1000);
      }
    })();
    log.info({ watchers }, 'saga explorer: following the saga events');
    return f;
  }

  async function unfollow(f: Following): Promise<void> {
    f.stopping = true;
    f.live.unsubscribe();
    // Bounded: closing a consumer the client is remaking can stay pending; the connection's drain, next in a
    // shutdown, ends it anyway, and the feed must never hold a shutdown up.
    const ended = Promise.all([f.close?.(), f.lookBack]).then(() => true);
    if (!(await Promise.race([ended, sleep(STOP_WAIT_MS, false, { ref: false })]))) log.warn({ waitedMs: STOP_WAIT_MS }, 'saga explorer look-back still closing; going on');
  }

  let stopped = false;
  return {
    watch() {
      watchers++;
      clearTimeout(idleTimer);
      if (!following && !stopped) following = follow();
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (--watchers > 0 || stopped) return;
        idleTimer = setTimeout(() => {
          const f = following;
          following = undefined;
          if (f) void unfollow(f).then(() => log.info({ idleMs: opts.idleMs }, 'saga explorer: no live list open; not following the saga events'));
        }, opts.idleMs);
        idleTimer.unref();
      };
    },
    async stop() {
      stopped = true;
      clearTimeout(idleTimer);
      const f = following;
      following = undefined;
      if (f) await unfollow(f);
    },
  };
}
