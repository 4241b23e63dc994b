/**
 * Pure helpers more than one part needs — the engine core and the operator's decisions included, which may import
 * nothing with I/O: backoff, trace ids, JetStream error classification, body-parser errors as public error codes.
 */

// ---- Backoff ----

export interface ExponentialBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Each delay is the previous one times this (default 2). */
  readonly multiplier?: number;
}

/** The delay before retry number `retry` (1 = the first retry): initial × multiplier^(retry−1), capped at max. */
export function backoffDelayMs(b: ExponentialBackoff, retry: number): number {
  return Math.min(b.maxMs, Math.round(b.initialMs * (b.multiplier ?? 2) ** Math.max(0, retry - 1)));
}

// ---- Trace ids ----

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id inside a W3C traceparent, or undefined when it is not a valid one. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const id = traceparent ? TRACEPARENT.exec(traceparent.trim())?.[1] : undefined;
  return id && !/^0+$/.test(id) ? id : undefined;
}

// ---- JetStream API errors ----

/** nats-server's JetStream error codes the platform reacts to (nats.js names only some of them). */
export const JetStreamErrorCodes = {
  /** The expected last message id (Nats-Expected-Last-Msg-Id) is not the stream's last. */
  wrongLastMsgId: 10070,
  /** The expected last (subject) sequence is not the stream's / the subject's last: a compare-and-set lost. */
  wrongLastSequence: 10071,
  wrongLastSequenceUnknown: 10164,
  /** JetStream is up but cannot serve yet: no meta leader elected, a leader moving. */
  temporarilyUnavailable: 10008,
  /** The replicas cannot be placed on the servers there are: in a cluster still forming, not all have joined. */
  noSuitablePeers: 10005,
  /** The stream's (or consumer's) servers are away: an R1 stream whose server is drained or restarting. */
  streamOffline: 10118,
  consumerOffline: 10119,
  /** More than one replica asked of a server that is not clustered. */
  replicasNotSupported: 10074,
  /** The server's store is full ("insufficient resources"). */
  insufficientResources: 10023,
  /** The account's or server's storage limit is reached ("insufficient storage resources available"). */
  storageResourcesExceeded: 10047,
  /** A write the store refused; "maximum bytes exceeded" / "maximum messages exceeded" on a stream that discards new. */
  storeFailed: 10077,
} as const;

function hasErrorCode(err: unknown, codes: readonly number[]): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && codes.includes(code)) return true;
  }
  return false;
}

/** The optimistic-concurrency refusal of a JetStream append or KV write, anywhere in the cause chain. */
export function isWrongLastSequence(err: unknown): boolean {
  return hasErrorCode(err, [JetStreamErrorCodes.wrongLastSequence, JetStreamErrorCodes.wrongLastSequenceUnknown]);
}

/** A chained append refused: wrong last sequence, or wrong last message id. */
export function isChainBroken(err: unknown): boolean {
  return hasErrorCode(err, [JetStreamErrorCodes.wrongLastMsgId, JetStreamErrorCodes.wrongLastSequence, JetStreamErrorCodes.wrongLastSequenceUnknown]);
}

/**
 * A write refused for lack of space: a stream at its limit that refuses new messages (discard new), or a server or
 * account whose JetStream store is full. Not transient: it lasts until space is freed or the limits are raised.
 */
export function isStoreFull(err: unknown): boolean {
  if (hasErrorCode(err, [JetStreamErrorCodes.insufficientResources, JetStreamErrorCodes.storageResourcesExceeded])) return true;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === JetStreamErrorCodes.storeFailed && /maximum (bytes|messages)|insufficient|no space/i.test(e.message)) return true;
  }
  return false;
}

/**
 * JetStream cannot serve the request for now (a cluster forming or electing, servers still joining, a stream's server
 * away), or nobody answers a request yet (no responders: the stream's server, or the service, is away): worth sending
 * again shortly. Anything else (a bad config, a refusal that stays) is not. By the names nats.js gives its errors
 * (this module imports no client): nats-core's NoRespondersError is named 'NoResponders'.
 */
export function isJetStreamUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name === 'TimeoutError' || e.name === 'NoResponders' || e.name === 'JetStreamNotEnabled') return true;
    // A direct get (or any JetStream request) whose stream's server is gone answers with a 503 status.
    if (e.name === 'JetStreamStatusError' && /no responders/i.test(e.message)) return true;
  }
  const { temporarilyUnavailable, noSuitablePeers, streamOffline, consumerOffline } = JetStreamErrorCodes;
  return hasErrorCode(err, [temporarilyUnavailable, noSuitablePeers, streamOffline, consumerOffline]);
}

// ---- HTTP bodies ----

export interface PublicError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** body-parser's failures (by their `type`) as the platform's public errors, the same in every service. */
export function bodyParserError(err: { type?: string; message?: string; limit?: number }): PublicError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return { status: 400, code: 'invalid_request', message: `/: malformed JSON (${err.message})` };
    case 'entity.too.large':
      return { status: 413, code: 'payload_too_large', message: `body exceeds ${err.limit ?? 'the limit of'} bytes` };
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return { status: 415, code: 'unsupported_media_type', message: err.message ?? 'unsupported body encoding' };
    case 'request.aborted':
      return { status: 400, code: 'request_aborted', message: 'the client aborted the request' };
    default:
      return undefined;
  }
}
