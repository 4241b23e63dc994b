import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { ClosedConnectionError, DrainingConnectionError, headers, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { backoffDelayMs, CeHeaders, isJetStreamUnavailable, MAX_DELIVER, MessageOutcomes, Subjects } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';
import { getHeader, PoisonMessageError } from './messages.ts';
import type { ServiceMetrics } from './metrics.ts';
import { isNotFound, sameSet, whileJetStreamForms } from './nats.ts';
import { SpanKind, extractTrace, withSpan } from './tracing.ts';

/** How long a message is tried again in place while the bus cannot serve its handler, before its redeliveries count. */
export const BUS_OUTAGE_HORIZON_MS = 600_000;

/** What to do with a handled message: ack it, drop it (term, no dead letter), or redeliver after a delay. */
export type HandlerResult = 'ack' | 'term' | { nak: number };

export interface HandlerContext {
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** Tells JetStream the handler is still busy (resets AckWait); call it during long work. */
  working(): void;
  /** Aborted when `stop()` begins: long waits may give up (the message is then nak'd for redelivery). */
  signal: AbortSignal;
}

export type Handler = (msg: JsMsg, ctx: HandlerContext) => Promise<HandlerResult>;

export interface ConsumerSpec {
  durable: string;
  filterSubjects: readonly string[];
  /** Default 30000. Longer than the longest handler (or the handler calls `working()`). */
  ackWaitMs?: number;
  /** Default MAX_DELIVER; the last delivery of a failing message dead-letters it. */
  maxDeliver?: number;
  /** Where a new consumer starts; default 'all'. */
  deliverPolicy?: 'all' | 'new';
}

export interface Backoff {
  initialMs?: number;
  maxMs?: number;
}

export interface RunConsumerOptions {
  /** For JetStream's max-deliveries advisory (the safety net of dead-lettering). */
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  consumer: ConsumerSpec;
  /** Most handlers running at once (and most messages buffered). */
  concurrency: number;
  service: string;
  log: Logger;
  metrics: ServiceMetrics;
  handler: Handler;
  /** Nak delay after a handler throws: initial × 2^(delivery−1), capped. Default 500 ms … 30 s. */
  retryBackoff?: Backoff;
  /** Delay before restarting a failed consume loop. Default 200 ms … 10 s. */
  restartBackoff?: Backoff;
  /** How often consumer_pending is refreshed from consumer info. Default 10 s. */
  pendingIntervalMs?: number;
}

export interface ConsumerHandle {
  /** True while the consume loop is running. */
  ready(): boolean;
  /** Stops fetching, naks what was fetched but not started, waits for in-flight handlers. Idempotent. */
  stop(): Promise<void>;
}

// NATS header values may not hold CR/LF; a reason is for people, keep it readable and bounded.
function headerValue(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1024);
}

/** Headers of a dead letter: the original ones (minus JetStream's own `Nats-*`), plus why and where it died. */
export function deadLetterHeaders(original: MsgHdrs | undefined, reason: string, stream: string, consumer: string): MsgHdrs {
  const h = headers();
  for (const key of original?.keys() ?? []) {
    if (/^nats-/i.test(key)) continue;
    for (const v of original!.values(key)) h.append(key, v);
  }
  h.set(CeHeaders.deadLetterReason, headerValue(reason));
  h.set(CeHeaders.deadLetterStream, stream);
  h.set(CeHeaders.deadLetterConsumer, consumer);
  return h;
}

/** Creates the durable pull consumer, or updates its filter / AckWait / MaxDeliver when they changed. */
async function declareConsumer(jsm: JetStreamManager, stream: string, spec: ConsumerSpec): Promise<void> {
  const ackWait = nanos(spec.ackWaitMs ?? 30_000);
  const maxDeliver = spec.maxDeliver ?? MAX_DELIVER;
  const filters = [...spec.filterSubjects];
  try {
    const { config } = await jsm.consumers.info(stream, spec.durable);
    const have = config.filter_subjects ?? (config.filter_subject ? [config.filter_subject] : []);
    if (!sameSet(have, filters) || config.ack_wait !== ackWait || config.max_deliver !== maxDeliver) {
      await jsm.consumers.update(stream, spec.durable, { filter_subjects: filters, ack_wait: ackWait, max_deliver: maxDeliver });
    }
  } catch (err) {
    if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    const cfg: Partial<ConsumerConfig> = {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: ackWait,
      max_deliver: maxDeliver,
      filter_subjects: filters,
      deliver_policy: spec.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
    };
    await jsm.consumers.add(stream, cfg);
  }
}

function isConnectionGone(err: unknown): boolean {
  return err instanceof ClosedConnectionError || err instanceof DrainingConnectionError;
}

/**
 * Consumes a durable JetStream pull consumer with bounded concurrency. See libs/API.md: explicit ack; a
 * PoisonMessageError, or a failure on the last delivery, dead-letters the message to `dlq.<subject>`
 * and terminates it; any other throw naks it with exponential backoff; the consume loop restarts
 * with backoff when it fails (consumer deleted, connection lost).
 */
export function runConsumer(opts: RunConsumerOptions): ConsumerHandle {
  const { js, jsm, stream, service, log: parentLog, metrics, handler } = opts;
  const durable = opts.consumer.durable;
  const maxDeliver = opts.consumer.maxDeliver ?? MAX_DELIVER;
  const concurrency = Math.max(1, Math.floor(opts.concurrency));
  const retry = { initialMs: 500, maxMs: 30_000, ...opts.retryBackoff };
  const restart = { initialMs: 200, maxMs: 10_000, ...opts.restartBackoff };
  const log = parentLog.child({ stream, consumer: durable });
  const labels = { service, consumer: durable };

  const abort = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let stopping = false;
  let consuming = false;
  let current: ConsumerMessages | undefined;
  let stopped: Promise<void> | undefined;

  // The labelled series, looked up once rather than per message.
  const handled = new Map(MessageOutcomes.map((o) => [o, metrics.messagesHandled.labels({ ...labels, outcome: o })]));
  const redelivered = metrics.messagesRedelivered.labels(labels);
  const duration = metrics.messageDuration.labels(labels);
  const outcome = (o: (typeof MessageOutcomes)[number]) => handled.get(o)!.inc();
  // Zero from the start: rate()/increase() ignore a series' first sample, so a counter born at 1 would hide
  // the first dead letter or redelivery from the dashboards and the DeadLettersGrowing alert.
  for (const series of handled.values()) series.inc(0);
  redelivered.inc(0);

  async function deadLetter(m: JsMsg, reason: string): Promise<void> {
    const h = deadLetterHeaders(m.headers, reason, stream, durable);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        // De-dup id: dead-lettering the same stream message twice (a crash before term) stores it once.
        await js.publish(Subjects.deadLetter(m.subject), m.data, { headers: h, msgID: `${stream}.${m.seq}` });
        m.term(headerValue(reason));
        outcome('dead_letter');
        log.warn({ subject: m.subject, seq: m.seq, deliveryCount: m.info.deliveryCount, reason }, 'message dead-lettered');
        return;
      } catch (err) {
        lastErr = err;
        m.working();
        await sleep(200 * (attempt + 1));
      }
    }
    // Not terminated: JetStream keeps it (and redelivers unless this was the last delivery).
    log.error({ err: lastErr, subject: m.subject, seq: m.seq, reason }, 'could not publish the dead letter (is DEAD_LETTERS declared?)');
    m.nak(backoffDelayMs(retry, m.info.deliveryCount));
    outcome('nak');
  }

  /**
   * The safety net under deadLetter(): a message that reached MaxDeliver without being terminated (its dead letter
   * could not be published) is never delivered again, so JetStream's advisory for it dead-letters it from the stream,
   * retrying while DEAD_LETTERS is unavailable. One replica per consumer (queue group) takes each advisory.
   */
  async function rescue(seq: number, deliveries: number): Promise<void> {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        const sm = await jsm.streams.getMessage(stream, { seq });
        if (!sm) return;
        const reason = `reached MaxDeliver (${deliveries} deliveries) without a dead letter; dead-lettered from the max-deliveries advisory`;
        await js.publish(Subjects.deadLetter(sm.subject), sm.data, { headers: deadLetterHeaders(sm.header, reason, stream, durable), msgID: `${stream}.${seq}` });
        outcome('dead_letter');
        log.warn({ subject: sm.subject, seq, deliveries }, 'message dead-lettered from the max-deliveries advisory');
        return;
      } catch (err) {
        log.error({ err, seq, attempt }, 'could not dead-letter from the max-deliveries advisory; trying again');
        await sleep(backoffDelayMs(restart, attempt), undefined, { signal: abort.signal }).catch(() => undefined);
      }
    }
  }
  const maxDeliveries = opts.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${durable}`, {
    queue: durable,
    callback: (err, msg) => {
      if (err) return;
      const advisory = msg.json<{ stream_seq?: number; deliveries?: number }>();
      if (typeof advisory.stream_seq === 'number') void rescue(advisory.stream_seq, advisory.deliveries ?? maxDeliver);
    },
  });

  async function handle(m: JsMsg): Promise<void> {
    const deliveryCount = m.info.deliveryCount;
    if (deliveryCount > 1) redelivered.inc();
    const endTimer = duration.startTimer();
    const last = deliveryCount >= maxDeliver;
    const attributes = {
      'messaging.system': 'nats',
      'messaging.operation.type': 'process',
      'messaging.destination.name': m.subject,
      'messaging.consumer.group.name': durable,
      'messaging.message.id': m.headers ? getHeader(m.headers, CeHeaders.id) : '',
      'messaging.nats.delivery_count': deliveryCount,
    };
    try {
      await withSpan(`process ${durable}`, { kind: SpanKind.CONSUMER, parent: extractTrace(m.headers), attributes }, async () => {
        let result: HandlerResult;
        try {
          // While the bus itself cannot serve the handler (a stream's server away, an election), the message is tried
          // again here, kept alive with working(), instead of spending its deliveries: an outage longer than the
          // redelivery backoff must not dead-letter a valid message.
          result = await pRetry(() => handler(m, { deliveryCount, working: () => m.working(), signal: abort.signal }), {
            retries: Number.POSITIVE_INFINITY,
            minTimeout: 500,
            maxTimeout: 5000,
            maxRetryTime: BUS_OUTAGE_HORIZON_MS,
            shouldRetry: ({ error }) => !stopping && isJetStreamUnavailable(error),
            onFailedAttempt: ({ error, attemptNumber }) => {
              if (stopping || !isJetStreamUnavailable(error)) return;
              m.working();
              if (attemptNumber === 1 || attemptNumber % 10 === 0) log.warn({ err: error, subject: m.subject, seq: m.seq, attempt: attemptNumber }, 'the bus cannot serve this message for now; trying again');
            },
          });
        } catch (err) {
          if (err instanceof PoisonMessageError) return deadLetter(m, `poison: ${err.reason}`);
          const message = (err as Error)?.message ?? String(err);
          if (last) return deadLetter(m, `failed on all ${deliveryCount} deliveries, last error: ${message}`);
          const delay = stopping ? 0 : backoffDelayMs(retry, deliveryCount);
          // A handler that gave up because stop() aborted it did not fail: no warning (a rolling update would raise many).
          if (stopping) log.info({ subject: m.subject, seq: m.seq, deliveryCount, error: message }, 'handler interrupted by the stop; redelivering');
          else log.warn({ err, subject: m.subject, seq: m.seq, deliveryCount, delayMs: delay }, 'handler failed; redelivering');
          m.nak(delay);
          outcome('nak');
          throw err; // recorded on the span
        }
        if (result === 'ack') {
          m.ack();
          outcome('ack');
        } else if (result === 'term') {
          m.term();
          outcome('term');
        } else if (last) {
          await deadLetter(m, `still asking for redelivery after ${deliveryCount} deliveries`);
        } else {
          m.nak(result.nak);
          outcome('nak');
        }
      });
    } catch {
      // already nak'd and logged above
    } finally {
      endTimer();
    }
  }

  let declared = false;
  async function consumeOnce(): Promise<boolean> {
    // At start-up, wait while JetStream forms; on a restart, a failure goes to the loop's own backoff and log.
    if (declared) await declareConsumer(jsm, stream, opts.consumer);
    else await whileJetStreamForms(() => declareConsumer(jsm, stream, opts.consumer), { log, what: `declare consumer ${durable}` });
    declared = true;
    const consumer = await js.consumers.get(stream, durable);
    // abort_on_missing_resource: a deleted consumer or stream ends the iterator with an error, so we recreate it.
    const messages = await consumer.consume({ max_messages: concurrency, abort_on_missing_resource: true });
    current = messages;
    // close() resolves only when the iteration below ends: stop now, let the loop run out.
    if (stopping) messages.stop();
    consuming = true;
    log.info({ concurrency }, 'consuming');
    void refreshPending();
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === 'consumer_deleted' || s.type === 'consumer_not_found' || s.type === 'stream_not_found' || s.type === 'heartbeats_missed') {
          log.warn({ status: s }, `consumer ${s.type}`);
        }
      }
    })().catch(() => undefined);
    let received = false;
    for await (const m of messages) {
      received = true;
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (stopping) {
        // Fetched but not started: hand it back at once rather than after AckWait.
        m.nak();
        continue;
      }
      const p = handle(m).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    return received;
  }

  async function refreshPending(): Promise<void> {
    try {
      const info = await jsm.consumers.info(stream, durable);
      metrics.consumerPending.set({ stream, consumer: durable }, info.num_pending);
    } catch {
      // The consume loop reports a missing consumer; a gauge refresh need not.
    }
  }
  const pendingTimer = setInterval(() => void refreshPending(), opts.pendingIntervalMs ?? 10_000);
  pendingTimer.unref();

  const loop = (async () => {
    let attempt = 0;
    while (!stopping) {
      try {
        if (await consumeOnce()) attempt = 0;
        if (!stopping) log.warn('consume loop ended; restarting');
      } catch (err) {
        if (stopping) break;
        if (isConnectionGone(err)) {
          log.info({ err }, 'nats connection closed; consumer stops');
          break;
        }
        log.error({ err, attempt }, 'consume loop failed; restarting');
      } finally {
        consuming = false;
        current = undefined;
      }
      if (stopping) break;
      const delay = backoffDelayMs(restart, ++attempt);
      await sleep(delay, undefined, { signal: abort.signal }).catch(() => undefined);
    }
  })();

  return {
    ready: () => consuming && !stopping,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        clearInterval(pendingTimer);
        maxDeliveries.unsubscribe();
        await current?.close();
        await loop;
        await Promise.all(inFlight);
        log.info('consumer stopped');
      })();
      return stopped;
    },
  };
}
