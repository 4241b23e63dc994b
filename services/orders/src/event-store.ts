/**
 * The order event store: stream ORDERS, one subject per order (`orders.<orderId>`), appends guarded
 * by the expected last subject sequence (optimistic concurrency). `execute` is load → decide → append,
 * and on a conflict it reloads and decides again.
 */
import type { JetStreamClient, JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import {
  CeHeaders, OrderEnded, OrderEventNames, OrderPlaced, Streams, Subjects, ceType, parseCeType, validator,
  type OrderEventName, type Validator,
} from '@sagamesh/contracts';
import type { TSchema } from '@sinclair/typebox';
import { PoisonMessageError, decodeMessage, publishEvent, type Envelope } from '@sagamesh/kit';
import { decide, replay, type DecisionRejection, type OrderCommand, type OrderEvent, type OrderState, type RecordedEvent } from './domain.ts';

export const SERVICE = 'orders';
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);
const MAX_DECIDE_ATTEMPTS = 8;

/** A command the aggregate refuses (a different order under a taken id, an end for an unknown order). */
export class OrderRejectedError extends Error {
  readonly code: DecisionRejection['code'];
  constructor(rejection: DecisionRejection) {
    super(rejection.message);
    this.name = 'OrderRejectedError';
    this.code = rejection.code;
  }
}

/** Appends kept losing the race for one order (should not happen: an order has at most two events). */
export class OrderConflictError extends Error {
  constructor(orderId: string, options?: ErrorOptions) {
    super(`order ${orderId}: still conflicting after ${MAX_DECIDE_ATTEMPTS} attempts`, options);
    this.name = 'OrderConflictError';
  }
}

/** The stream's answer to an append whose expected last subject sequence is stale. */
export function isWrongLastSequence(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (WRONG_LAST_SEQUENCE.has((e as { code?: unknown }).code as number)) return true;
  }
  return false;
}

const eventValidators = {
  placed: validator(OrderPlaced, 'order placed event'),
  confirmed: validator(OrderEnded, 'order confirmed event'),
  cancelled: validator(OrderEnded, 'order cancelled event'),
  failed: validator(OrderEnded, 'order failed event'),
} as const;
export const orderEventTypes: readonly string[] = OrderEventNames.map((n) => ceType('order', n));

/** Decodes a message of the ORDERS stream; a PoisonMessageError when it is not a known order event. */
export function decodeOrderEvent(msg: { subject: string; headers?: MsgHdrs; data: Uint8Array }, seq: number): { rec: RecordedEvent; envelope: Envelope<unknown> } {
  const type = msg.headers?.get(CeHeaders.type) ?? '';
  const parsed = parseCeType(type);
  const name = parsed?.area === 'order' && parsed.version === 1 ? (OrderEventNames as readonly string[]).find((n) => n === parsed.name) : undefined;
  if (name === undefined) throw new PoisonMessageError(`not an order event: ce-type "${type}" (expected one of ${orderEventTypes.join(', ')})`);
  // One validator per event name; the union of their types is the OrderEvent union below.
  const envelope: Envelope<unknown> = decodeMessage(msg, eventValidators[name as OrderEventName] as Validator<TSchema>, [type]);
  const event = { name, data: envelope.data } as OrderEvent;
  if (Subjects.orderStream(event.data.orderId) !== msg.subject) throw new PoisonMessageError(`event of order ${event.data.orderId} stored under ${msg.subject}`);
  return { rec: { event, seq, at: envelope.time }, envelope };
}

export interface LoadedOrder {
  state: OrderState;
  /** Last stream sequence of the order's subject; 0 when it has no events. */
  version: number;
  events: RecordedEvent[];
}

export interface EventMeta {
  /** ce-causationid: what caused this (the request id, the saga event's id). */
  causationId?: string;
}

export class OrderEventStore {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  constructor(js: JetStreamClient, jsm: JetStreamManager) {
    this.#js = js;
    this.#jsm = jsm;
  }

  /** Every event of one order, in order. */
  async load(orderId: string): Promise<LoadedOrder> {
    const subject = Subjects.orderStream(orderId);
    const events: RecordedEvent[] = [];
    for (let seq = 1; ; ) {
      // STREAM.MSG.GET takes `next_by_subj` (first message of the subject at or after seq); the client's
      // MsgRequest type only lists seq / last_by_subj.
      const query = { seq, next_by_subj: subject } as unknown as MsgRequest;
      const sm = await this.#jsm.streams.getMessage(Streams.orders.name, query);
      if (sm === null) break;
      events.push(decodeOrderEvent({ subject: sm.subject, headers: sm.header, data: sm.data }, sm.seq).rec);
      seq = sm.seq + 1;
    }
    return { state: replay(events), version: events.at(-1)?.seq ?? 0, events };
  }

  /** Appends events after `expectedVersion`; throws the stream's wrong-last-sequence error on a race. */
  async append(orderId: string, events: readonly OrderEvent[], expectedVersion: number, meta: EventMeta = {}): Promise<number> {
    let version = expectedVersion;
    for (const event of events) {
      const ack = await publishEvent(this.#js, Subjects.orderStream(orderId), {
        type: ceType('order', event.name),
        source: SERVICE,
        data: event.data,
        correlationId: orderId,
        ...(meta.causationId !== undefined ? { causationId: meta.causationId } : {}),
        expectLastSubjectSequence: version,
      });
      version = ack.seq;
    }
    return version;
  }

  /**
   * Decides `cmd` against the order's current events and appends the outcome; on a concurrent append
   * it reloads and decides again. A `place` first assumes a new order (one round trip on the hot path).
   * Returns the events appended (none when the command was already in effect).
   */
  async execute(orderId: string, cmd: OrderCommand, meta: EventMeta = {}): Promise<OrderEvent[]> {
    let current: Pick<LoadedOrder, 'state' | 'version'> = cmd.kind === 'place' ? { state: undefined, version: 0 } : await this.load(orderId);
    for (let attempt = 1; ; attempt++) {
      const decision = decide(current.state, cmd);
      if (!decision.ok) throw new OrderRejectedError(decision.rejection);
      if (decision.events.length === 0) return [];
      try {
        await this.append(orderId, decision.events, current.version, meta);
        return decision.events;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        if (attempt >= MAX_DECIDE_ATTEMPTS) throw new OrderConflictError(orderId, { cause: err });
        current = await this.load(orderId);
      }
    }
  }
}
