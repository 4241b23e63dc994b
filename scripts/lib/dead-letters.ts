/**
 * The DEAD_LETTERS stream as an operator reads it: list what died and why, show one, replay one to the subject it
 * died on (the consumer gets it again), or discard one. The I/O of `make dlq`; the tests drive it on a real server.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { CeHeaders, Streams } from '@sagamesh/contracts';

export interface DeadLetter {
  readonly seq: number;
  /** The subject the message was consumed from (`dlq.` taken off). */
  readonly subject: string;
  readonly reason: string;
  readonly stream: string;
  readonly consumer: string;
  readonly time: string;
  readonly bytes: number;
}

const DLQ_PREFIX = 'dlq.';
const DEAD_LETTER_HEADERS = new Set([CeHeaders.deadLetterReason, CeHeaders.deadLetterStream, CeHeaders.deadLetterConsumer]);

function describe(sm: StoredMsg): DeadLetter {
  return {
    seq: sm.seq,
    subject: sm.subject.startsWith(DLQ_PREFIX) ? sm.subject.slice(DLQ_PREFIX.length) : sm.subject,
    reason: sm.header?.get(CeHeaders.deadLetterReason) ?? '',
    stream: sm.header?.get(CeHeaders.deadLetterStream) ?? '',
    consumer: sm.header?.get(CeHeaders.deadLetterConsumer) ?? '',
    time: sm.time.toISOString(),
    bytes: sm.data.length,
  };
}

/** Every dead letter, oldest first, at most `limit`. */
export async function listDeadLetters(jsm: JetStreamManager, limit = 100): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  const { state } = await jsm.streams.info(Streams.deadLetters.name);
  for (let seq = state.first_seq; seq <= state.last_seq && out.length < limit; seq++) {
    const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
    if (sm) out.push(describe(sm));
  }
  return out;
}

/** One dead letter with its headers and body, or undefined when there is none at `seq` (getMessage: null). */
export async function showDeadLetter(jsm: JetStreamManager, seq: number): Promise<(DeadLetter & { headers: Record<string, string>; body: string }) | undefined> {
  const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
  if (!sm) return undefined;
  const h: Record<string, string> = {};
  for (const k of sm.header?.keys() ?? []) h[k] = sm.header!.get(k);
  return { ...describe(sm), headers: h, body: new TextDecoder().decode(sm.data) };
}

/**
 * Publishes the dead letter again on the subject it died on, with its headers minus the dead-letter ones (its
 * consumer handles it as new), then removes it from DEAD_LETTERS. Returns the subject, or undefined if none at `seq`.
 */
export async function replayDeadLetter(js: JetStreamClient, jsm: JetStreamManager, seq: number): Promise<string | undefined> {
  const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
  if (!sm) return undefined;
  const { subject } = describe(sm);
  const h: MsgHdrs = headers();
  for (const k of sm.header?.keys() ?? []) {
    if (DEAD_LETTER_HEADERS.has(k as never)) continue;
    for (const v of sm.header!.values(k)) h.append(k, v);
  }
  await js.publish(subject, sm.data, { headers: h });
  await jsm.streams.deleteMessage(Streams.deadLetters.name, seq);
  return subject;
}

/** Removes one dead letter; false when there is none at `seq` (any other failure is thrown). */
export async function discardDeadLetter(jsm: JetStreamManager, seq: number): Promise<boolean> {
  if (!(await jsm.streams.getMessage(Streams.deadLetters.name, { seq }))) return false;
  return jsm.streams.deleteMessage(Streams.deadLetters.name, seq);
}
