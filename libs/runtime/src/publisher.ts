import pRetry from 'p-retry';
import { createInbox, headers as natsHeaders, NoRespondersError, TimeoutError, type Msg, type MsgHdrs, type NatsConnection, type Payload, type Subscription } from '@nats-io/transport-node';
import { JetStreamApiError, PubHeaders, type JetStreamClient, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { setHeader } from './messages.ts';

/** What publishing needs of a JetStream client: a JetStreamClient, or the cheaper JetStreamPublisher. */
export type Publisher = Pick<JetStreamClient, 'publish'>;

interface Waiting {
  resolve(m: Msg): void;
  reject(err: Error): void;
  subject: string;
  deadline: number;
}

/** How often timed-out requests are failed: their timeout is met within this much. */
const SWEEP_MS = 100;

export interface MuxRequestOptions {
  headers?: MsgHdrs;
  /** Default: the mux's timeout. */
  timeout?: number;
}

/**
 * Core NATS requests whose replies all come back on ONE subscription. nats.js allocates an Error
 * with its stack trace (RequestOne.cancel, even on success) and a timer for every request: about a
 * tenth of the engine's CPU at load, as JetStream publishes are requests. Fails like nc.request: no
 * responder is a NoRespondersError, no reply in time a TimeoutError.
 * Hand-written: the request/reply muxing nats.js does, minus the per-request allocations.
 */
export class RequestMux {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  readonly #prefix: string;
  readonly #waiting = new Map<string, Waiting>();
  #sub: Subscription | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #next = 0;

  constructor(nc: NatsConnection, opts: { timeoutMs?: number } = {}) {
    this.#nc = nc;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    // The connection's inbox prefix (an identity's own, when it has one): the only inbox its permissions let it read.
    this.#prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
  }

  request(subject: string, payload?: Payload, opts: MuxRequestOptions = {}): Promise<Msg> {
    this.#sub ??= this.#nc.subscribe(`${this.#prefix}*`, { callback: (_err, m) => this.#onReply(m) });
    this.#sweep ??= setInterval(() => this.#expire(), SWEEP_MS).unref();
    const token = (this.#next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.#waiting.set(token, { resolve, reject, subject, deadline: Date.now() + (opts.timeout ?? this.#timeoutMs) });
      try {
        this.#nc.publish(subject, payload, { reply: this.#prefix + token, ...(opts.headers ? { headers: opts.headers } : {}) });
      } catch (err) {
        this.#waiting.delete(token);
        reject(err as Error);
      }
    });
  }

  #onReply(m: Msg): void {
    const token = m.subject.slice(this.#prefix.length);
    const w = this.#waiting.get(token);
    if (!w) return; // timed out already
    this.#waiting.delete(token);
    if (m.data.length === 0 && m.headers?.code === 503) w.reject(new NoRespondersError(w.subject));
    else w.resolve(m);
  }

  #expire(): void {
    const now = Date.now();
    for (const [token, w] of this.#waiting) {
      if (w.deadline > now) continue;
      this.#waiting.delete(token);
      w.reject(new TimeoutError());
    }
  }

  /** Stops listening for replies; requests still waiting fail. */
  close(): void {
    clearInterval(this.#sweep);
    this.#sub?.unsubscribe();
    for (const w of this.#waiting.values()) w.reject(new Error(`closed before the reply to ${w.subject}`));
    this.#waiting.clear();
  }
}

/**
 * JetStream publishes (and KV writes: a KV write is a publish) over a RequestMux. Same call as
 * JetStreamClient.publish (msgID, expect, headers, timeout) and the same failures: a refused
 * publish is a JetStreamApiError with the server's code, no stream a NoRespondersError, no ack in
 * time a TimeoutError.
 */
export class JetStreamPublisher extends RequestMux implements Publisher {
  publish(subject: string, payload?: Payload, opts: Partial<JetStreamPublishOptions> = {}): Promise<PubAck> {
    const h = opts.headers ?? natsHeaders();
    if (opts.msgID) setHeader(h, PubHeaders.MsgIdHdr, opts.msgID);
    const e = opts.expect;
    if (e?.lastMsgID) setHeader(h, PubHeaders.ExpectedLastMsgIdHdr, e.lastMsgID);
    if (e?.streamName) setHeader(h, PubHeaders.ExpectedStreamHdr, e.streamName);
    if (typeof e?.lastSequence === 'number') setHeader(h, PubHeaders.ExpectedLastSeqHdr, String(e.lastSequence));
    if (typeof e?.lastSubjectSequence === 'number') setHeader(h, PubHeaders.ExpectedLastSubjectSequenceHdr, String(e.lastSubjectSequence));
    const once = () => this.request(subject, payload, { headers: h, ...(opts.timeout ? { timeout: opts.timeout } : {}) }).then((m) => parseAck(subject, m));
    // In a cluster (R>1) a publish whose Nats-Msg-Id is still being replicated from an earlier publish is refused with
    // "duplicate message id is in process"; once that one is committed, the same publish gets its duplicate ack.
    // The retry machinery is set up only then: this is every publish's path.
    return once().catch((err: unknown) => {
      if (!opts.msgID || !isDuplicateInProcess(err)) throw err;
      return pRetry(once, { retries: 5, minTimeout: 20, maxTimeout: 500, shouldRetry: ({ error }) => isDuplicateInProcess(error) });
    });
  }
}

function isDuplicateInProcess(err: unknown): boolean {
  return err instanceof JetStreamApiError && /duplicate message id is in process/i.test(err.message);
}

function parseAck(subject: string, m: Msg): PubAck {
  let v: PubAck & { error?: ConstructorParameters<typeof JetStreamApiError>[0] };
  try {
    v = m.json();
  } catch (err) {
    throw new Error(`unreadable JetStream ack on ${subject}: ${(err as Error).message}`, { cause: err });
  }
  if (v.error) throw new JetStreamApiError(v.error);
  const ack: PubAck = { stream: v.stream, seq: v.seq, duplicate: v.duplicate ?? false };
  if (v.domain) ack.domain = v.domain;
  return ack;
}

/** A KV write as a publish: `value` under `key` in `bucket`, only at revision `previousSeq` when given (0: absent). The new revision. */
export async function kvWrite(pub: Publisher, bucket: string, key: string, value: Payload, previousSeq?: number): Promise<number> {
  return (await pub.publish(`$KV.${bucket}.${key}`, value, previousSeq === undefined ? {} : { expect: { lastSubjectSequence: previousSeq } })).seq;
}
