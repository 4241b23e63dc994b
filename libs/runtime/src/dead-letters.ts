/**
 * The DEAD_LETTERS stream as an operator reads it: list what died and why, show one, replay one to the subject it died
 * on (its consumer gets it again), or discard one. `make dlq` and the gateway's explorer both use these.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { CeHeaders, Streams, type DeadLetterView } from '@sagamesh/contracts';

const DLQ_PREFIX = 'dlq.';
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([CeHeaders.deadLetterReason, CeHeaders.deadLetterStream, CeHeaders.deadLetterConsumer]);
/** Sequences looked at for one listing, at most: removed letters leave gaps, and a listing must not cost thousands of gets. */
const MAX_PROBES = 1000;

function describe(sm: StoredMsg): DeadLetterView {
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

/** At most `limit` dead letters, oldest first (or newest first), and how many the stream holds. */
export async function listDeadLetters(jsm: JetStreamManager, opts: { limit?: number; newestFirst?: boolean } = {}): Promise<{ total: number; deadLetters: DeadLetterView[] }> {
  const limit = opts.limit ?? 100;
  const { state } = await jsm.streams.info(Streams.deadLetters.name);
  const out: DeadLetterView[] = [];
  const step = opts.newestFirst ? -1 : 1;
  for (let seq = opts.newestFirst ? state.last_seq : state.first_seq, probes = 0; seq >= state.first_seq && seq <= state.last_seq && seq > 0 && out.length < limit && probes < MAX_PROBES; seq += step, probes++) {
    const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
    if (sm) out.push(describe(sm));
  }
  return { total: state.messages, deadLetters: out };
}

/** One dead letter with its headers and body, or undefined when there is none at `seq`. */
export async function showDeadLetter(jsm: JetStreamManager, seq: number): Promise<(DeadLetterView & { headers: Record<string, string>; body: string }) | undefined> {
  const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
  if (!sm) return undefined;
  const h: Record<string, string> = {};
  for (const k of sm.header?.keys() ?? []) h[k] = sm.header!.get(k);
  return { ...describe(sm), headers: h, body: new TextDecoder().decode(sm.data) };
}

/**
 * Publishes dead letter `seq` again on the subject it died on, with its headers minus the dead-letter ones (its
 * consumer handles it as new), then removes it. Undefined when there is none at `seq`. `js` must be allowed to publish
 * on that subject: another identity's (the admin's, for `make dlq`; the gateway's DLQ_NATS_USER).
 */
export async function replayDeadLetter(js: JetStreamClient, jsm: JetStreamManager, seq: number): Promise<DeadLetterView | undefined> {
  const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
  if (!sm) return undefined;
  const view = describe(sm);
  const h: MsgHdrs = headers();
  for (const k of sm.header?.keys() ?? []) {
    if (DEAD_LETTER_HEADERS.has(k)) continue;
    for (const v of sm.header!.values(k)) h.append(k, v);
  }
  await js.publish(view.subject, sm.data, { headers: h });
  await jsm.streams.deleteMessage(Streams.deadLetters.name, seq);
  return view;
}

/** Removes one dead letter; false when there is none at `seq` (any other failure is thrown). */
export async function discardDeadLetter(jsm: JetStreamManager, seq: number): Promise<boolean> {
  if (!(await jsm.streams.getMessage(Streams.deadLetters.name, { seq }))) return false;
  return jsm.streams.deleteMessage(Streams.deadLetters.name, seq);
}
