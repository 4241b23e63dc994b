// Stream DEAD_LETTERS for the explorer: the newest dead letters, and a replay to the subject each died on.
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { CeHeaders, Streams, type DeadLetterView } from '@sagamesh/contracts';

const DLQ_PREFIX = 'dlq.';
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([CeHeaders.deadLetterReason, CeHeaders.deadLetterStream, CeHeaders.deadLetterConsumer]);
/** Sequences looked at for one page, at most: removed letters leave gaps, and a page must not cost thousands of gets. */
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

/** The newest dead letters first, at most `limit`, and how many the stream holds. */
export async function listDeadLetters(jsm: JetStreamManager, limit: number): Promise<{ total: number; deadLetters: DeadLetterView[] }> {
  const { state } = await jsm.streams.info(Streams.deadLetters.name);
  const out: DeadLetterView[] = [];
  for (let seq = state.last_seq, probes = 0; seq >= state.first_seq && seq > 0 && out.length < limit && probes < MAX_PROBES; seq--, probes++) {
    const sm = await jsm.streams.getMessage(Streams.deadLetters.name, { seq });
    if (sm) out.push(describe(sm));
  }
  return { total: state.messages, deadLetters: out };
}

/**
 * Publishes dead letter `seq` again on the subject it died on, with its headers minus the dead-letter ones (its
 * consumer handles it as new), then removes it. Undefined when there is none at `seq`. `js`/`jsm` must be allowed
 * to publish on that subject: another identity's (see the gateway's DLQ_NATS_USER).
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
