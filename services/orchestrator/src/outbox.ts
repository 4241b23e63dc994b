import type { PubAck } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CeHeaders, ceType, isProgressDurable, isSagaEndEvent, SagaEndSubjects, sagaEventEntryOf, stepCommandType, Subjects, type RunView, type SagaEvent, type SagaEventEntry, type SagaEventName, type StepCommand } from '@sagamesh/contracts';
import { buildHeaders, getHeader, setHeader, type Publisher } from '@sagamesh/runtime';
import type { Effect, RunState } from './core/types.ts';
import { toRunView } from './core/view.ts';

export const SOURCE = 'orchestrator';

/**
 * One message the transition decided to send, kept in the run record until published. Events carry no
 * view: it is the record's own state (same version), so the outbox stays small. Timers are not
 * messages: they live in the state (RunState.timers).
 */
export type OutboxEntry =
  | { type: 'command'; subject: string; msgId: string; command: StepCommand }
  | { type: 'event'; msgId: string; event: SagaEventName; step?: string; message?: string };

/** What is persisted under the run id in KV saga-runs. */
export interface StoredRun {
  state: RunState;
  /** The messages of the transition that produced `state.version`; re-publishing them is safe (same msg ids). */
  outbox: OutboxEntry[];
  /** ce-id of the input that caused that transition. */
  causationId?: string;
}

/** The publishable effects (commands and events: timers stay in the state), with deterministic de-dup ids. */
export function toOutbox(run: RunState, effects: readonly Effect[]): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  let n = 0;
  for (const e of effects) {
    if (e.type === 'command') out.push({ type: 'command', subject: e.subject, msgId: e.msgId, command: e.command });
    else if (e.type === 'event') {
      out.push({
        type: 'event',
        msgId: `${run.runId}.v${run.version}.${n++}`,
        event: e.event,
        ...(e.step !== undefined ? { step: e.step } : {}),
        ...(e.message !== undefined ? { message: e.message } : {}),
      });
    }
  }
  return out;
}

export const encodeRun = (s: StoredRun): string => JSON.stringify(s);
export function decodeRun(bytes: Uint8Array): StoredRun {
  const s = JSON.parse(new TextDecoder().decode(bytes)) as StoredRun;
  if (!s || typeof s !== 'object' || !s.state?.runId || !Array.isArray(s.outbox)) throw new Error('not a run record');
  return s;
}

interface Outgoing {
  type: string;
  data: unknown;
  /** ce-id, and the de-dup id unless `msgId` says otherwise. */
  id: string;
  msgId?: string;
  correlationId: string;
  causationId?: string;
  traceparent?: string;
}

/** Where an outbox goes: JetStream for what is kept, and the plain connection for the live-only progress events. */
export interface OutboxBus {
  js: Publisher;
  nc: Pick<NatsConnection, 'publish'>;
}

function headersOf(msg: Outgoing) {
  const h = buildHeaders({ type: msg.type, source: SOURCE, data: msg.data, id: msg.id, correlationId: msg.correlationId, ...(msg.causationId ? { causationId: msg.causationId } : {}) });
  // Without an active span (an API request, a sweep) the run's own trace context goes along.
  if (msg.traceparent && !getHeader(h, CeHeaders.traceparent)) setHeader(h, CeHeaders.traceparent, msg.traceparent);
  return h;
}

/** `json`: the data already serialised (events of one transition share their view's JSON). */
function publish(js: Publisher, subject: string, msg: Outgoing, json = JSON.stringify(msg.data)): Promise<PubAck> {
  return js.publish(subject, json, { headers: headersOf(msg), msgID: msg.msgId ?? msg.id });
}

type EventEntry = Extract<OutboxEntry, { type: 'event' }>;

/**
 * Publishes a record's outbox, all messages at once. Every message has a deterministic id, so
 * publishing the same outbox again is de-duplicated by JetStream (within its duplicate window).
 * A run's end event goes out on its saga.ended subject too (SagaEndSubjects), always kept. The
 * progress of an origin whose progress is not kept (isProgressDurable) goes out as one plain message
 * per transition (its first event, the others in `more`), unacknowledged: sent again with the outbox,
 * a live watcher sees events it already has, which it ignores.
 */
export async function publishOutbox(bus: OutboxBus, stored: StoredRun): Promise<number> {
  const { state, outbox } = stored;
  const base = { correlationId: state.runId, ...(stored.causationId ? { causationId: stored.causationId } : {}), ...(state.traceparent ? { traceparent: state.traceparent } : {}) };
  const sent: Promise<PubAck>[] = [];
  const events: EventEntry[] = [];
  for (const e of outbox) {
    if (e.type === 'event') events.push(e);
    else {
      const [, service, command] = e.subject.split('.');
      sent.push(publish(bus.js, e.subject, { ...base, type: stepCommandType(service!, command!), data: e.command, id: e.msgId }));
    }
  }
  if (events.length > 0) {
    const view: RunView = toRunView(state);
    let viewJson: string | undefined;
    const message = (e: EventEntry, more: SagaEventEntry[] = []) => {
      const data: SagaEvent = { ...sagaEventEntryOf(e), ...(more.length > 0 ? { more } : {}), run: view };
      // The same bytes as JSON.stringify(data), with the view serialised once for all the messages.
      const json = `${JSON.stringify({ ...data, run: undefined }).slice(0, -1)},"run":${(viewJson ??= JSON.stringify(view))}}`;
      return { msg: { ...base, type: ceType('saga', e.event), data, id: e.msgId }, json };
    };
    const progress = Subjects.sagaEvent(state.origin, state.runId);
    const durable = isProgressDurable(state.origin);
    if (!durable) {
      const [first, ...rest] = events;
      const { msg, json } = message(first!, rest.map(sagaEventEntryOf));
      bus.nc.publish(progress, json, { headers: headersOf(msg) });
    }
    for (const e of events) {
      if (!durable && !isSagaEndEvent(e.event)) continue; // it went out in the plain message above
      const { msg, json } = message(e);
      if (durable) sent.push(publish(bus.js, progress, msg, json));
      if (isSagaEndEvent(e.event)) sent.push(publish(bus.js, SagaEndSubjects.ended(state.origin, state.runId), { ...msg, msgId: `${e.msgId}.ended` }, json));
    }
  }
  await Promise.all(sent);
  return outbox.length;
}
