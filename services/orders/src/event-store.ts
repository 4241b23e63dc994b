/**
 * The order event store: stream ORDERS, one subject per order (`orders.<orderId>`), appends guarded
 * by the expected last subject sequence (optimistic concurrency). `execute` is load → decide → append,
 * and on a conflict it reloads and decides again.
 */
import type { JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import {
  CeHeaders, OrderEnded, OrderEventNames, OrderPlaced, Streams, Subjects, ceType, isStoreFull, isWrongLastSequence, ordersReserveBytes, parseCeType, validator,
  type OrderEventName, type Validator,
} from '@sagamesh/contracts';
import type { TSchema } from '@sinclair/typebox';
import { decodeMessage, type Envelope, PoisonMessageError, type Publisher, publishEvent } from '@sagamesh/runtime';
import { decide, evolve, isTerminal, replay, type DecisionRejection, type OrderCommand, type OrderEvent, type OrderState, type RecordedEvent } from './domain.ts';

export const SERVICE = 'orders';
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

/**
 * The event store has no room for new orders: ORDERS is past its high-water mark (its limit less the reserve kept
 * for the end events of accepted orders), or JetStream refused the write for lack of space. Not transient.
 */
export class StoreFullError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreFullError';
  }
}

/** How often the fill of ORDERS is read for the intake check (more often once it is near its high-water mark). */
const FILL_CHECK_MS = 1000;
/** Past this fraction of the high-water mark every new order reads the fill first: the last orders are counted exactly. */
const NEAR_HIGH_WATER = 0.8;

interface Fill {
  bytes: number;
  maxBytes: number;
  at: number;
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

export interface OrderEventStoreOptions {
  /**
   * Remember the state and version of up to this many orders this process appended to and that are
   * not terminal yet (default 0: none), so their next command skips the load. A stale entry costs
   * nothing but a conflict: the append expects the remembered version, and a refusal reloads.
   */
  recentOrders?: number;
}

export class OrderEventStore {
  readonly #js: Publisher;
  readonly #jsm: JetStreamManager;
  readonly #recentMax: number;
  readonly #recent = new Map<string, Pick<LoadedOrder, 'state' | 'version'>>();
  #fill: Fill | undefined;
  #reading: Promise<Fill | undefined> | undefined;
  /** `js` publishes the appends (a JetStreamClient, or the runtime's cheaper JetStreamPublisher). */
  constructor(js: Publisher, jsm: JetStreamManager, opts: OrderEventStoreOptions = {}) {
    this.#js = js;
    this.#jsm = jsm;
    this.#recentMax = opts.recentOrders ?? 0;
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
    return (await this.#append(orderId, events, { state: undefined, version: expectedVersion }, meta)).version;
  }

  /** Appends after `from.version`; returns the order's state and version after the last event. */
  async #append(orderId: string, events: readonly OrderEvent[], from: Pick<LoadedOrder, 'state' | 'version'>, meta: EventMeta): Promise<Pick<LoadedOrder, 'state' | 'version'>> {
    let { state, version } = from;
    for (const event of events) {
      const time = new Date().toISOString();
      const ack = await publishEvent(this.#js, Subjects.orderStream(orderId), {
        type: ceType('order', event.name),
        source: SERVICE,
        data: event.data,
        correlationId: orderId,
        time,
        ...(meta.causationId !== undefined ? { causationId: meta.causationId } : {}),
        expectLastSubjectSequence: version,
      }).catch((err: unknown) => {
        if (isStoreFull(err)) throw new StoreFullError(`the order store refused the ${event.name} event of order ${orderId}: ${(err as Error).message}`, { cause: err });
        throw err;
      });
      version = ack.seq;
      state = evolve(state, { event, seq: version, at: time });
    }
    return { state, version };
  }

  /**
   * Refuses a new order (StoreFullError) once ORDERS is past its high-water mark: its max bytes less the reserve
   * (ordersReserveBytes) that the end events of the orders already accepted need. The fill is read at most every
   * FILL_CHECK_MS, and before every new order once it is near the mark; a failed read leaves the append to decide.
   * An order already placed (a retried POST) is not refused: its place is a no-op.
   */
  async #checkIntake(orderId: string): Promise<void> {
    let fill = this.#fill;
    const highWater = (f: Fill) => f.maxBytes - ordersReserveBytes(f.maxBytes);
    if (!fill || Date.now() - fill.at > FILL_CHECK_MS || (fill.maxBytes > 0 && fill.bytes >= NEAR_HIGH_WATER * highWater(fill))) {
      this.#reading ??= this.#jsm.streams
        .info(Streams.orders.name)
        .then((info) => (this.#fill = { bytes: info.state.bytes, maxBytes: info.config.max_bytes, at: Date.now() }))
        .catch(() => this.#fill)
        .finally(() => (this.#reading = undefined));
      fill = await this.#reading;
    }
    if (fill && fill.maxBytes > 0 && fill.bytes >= highWater(fill) && (await this.load(orderId)).version === 0) {
      throw new StoreFullError(
        `the order store is full (${fill.bytes} of ${fill.maxBytes} bytes; the last ${Math.round(ordersReserveBytes(fill.maxBytes))} are kept for the orders already accepted): new orders are refused until it has more room (JETSTREAM_STORE_MIB)`,
      );
    }
  }

  #remember(orderId: string, current: Pick<LoadedOrder, 'state' | 'version'>): void {
    if (this.#recentMax === 0) return;
    this.#recent.delete(orderId);
    // A terminal order takes no more commands worth a shortcut.
    if (current.state === undefined || isTerminal(current.state)) return;
    this.#recent.set(orderId, current);
    if (this.#recent.size > this.#recentMax) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /**
   * Decides `cmd` against the order's current events and appends the outcome; on a concurrent append
   * it reloads and decides again. A `place` first assumes a new order (one round trip on the hot path).
   * Returns the events appended (none when the command was already in effect).
   */
  async execute(orderId: string, cmd: OrderCommand, meta: EventMeta = {}): Promise<OrderEvent[]> {
    if (cmd.kind === 'place') await this.#checkIntake(orderId);
    const recent = this.#recent.get(orderId);
    let current: Pick<LoadedOrder, 'state' | 'version'> = cmd.kind === 'place' ? { state: undefined, version: 0 } : (recent ?? (await this.load(orderId)));
    for (let attempt = 1; ; attempt++) {
      const decision = decide(current.state, cmd);
      if (!decision.ok) throw new OrderRejectedError(decision.rejection);
      if (decision.events.length === 0) {
        this.#remember(orderId, current);
        return [];
      }
      try {
        this.#remember(orderId, await this.#append(orderId, decision.events, current, meta));
        return decision.events;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        if (attempt >= MAX_DECIDE_ATTEMPTS) throw new OrderConflictError(orderId, { cause: err });
        current = await this.load(orderId);
      }
    }
  }
}
