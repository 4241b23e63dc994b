/**
 * The two consumers' handlers.
 * - orders-projector (on orders.>): the outbox relay. Projects each stored event into the read model,
 *   then does its side effect: `placed` starts the saga, an end event publishes the public domain
 *   event. Side effects run on every delivery and are idempotent downstream (the engine by run id,
 *   JetStream by Nats-Msg-Id), so a crash anywhere after the append never loses a saga or an event.
 * - orders-saga-events (on saga.ended.order.>, the runs' ends only): a run's end appends the order's end event
 *   (applySagaEnd, which the reconciler also takes when an end event never arrived).
 */
import type { JsMsg } from '@nats-io/jetstream';
import {
  SagaEndEventNames, SagaEvent, Subjects, ceType, validator,
  type OrderDomainEvent,
} from '@sagamesh/contracts';
import { EngineRequestError } from '@sagamesh/participant';
import { decodeMessage, type HandlerResult, type Logger, PoisonMessageError, type Publisher, publishEvent } from '@sagamesh/runtime';
import type { OrderEvent, OrderSnapshot } from './domain.ts';
import { OrderRejectedError, SERVICE, decodeOrderEvent, type EventMeta, type OrderEventStore } from './event-store.ts';
import type { ReadModel } from './read-model.ts';
import { endCommandFor, type SagaStarter } from './saga.ts';

/** An end event whose `placed` cannot be projected yet (not in the stream either) waits this long before it is tried again. */
const WAIT_FOR_PLACED_MS = 500;

/** Msg-Id of a public order event: one per order and type, so a re-projection is de-duplicated. */
export const domainEventMsgId = (orderId: string, type: string) => `${orderId}.${type}`;

export function projectorHandler(deps: { js: Publisher; readModel: ReadModel; store: OrderEventStore; starter: SagaStarter; log: Logger }) {
  return async (msg: JsMsg): Promise<HandlerResult> => {
    const { rec, envelope } = decodeOrderEvent(msg, msg.seq);
    let outcome = await deps.readModel.project(rec);
    if (outcome.kind === 'wait') {
      // An end event before its `placed` was projected: the POST started the saga early, and the `placed` delivery is
      // still out (on a replica that died it comes back only after AckWait). Fold the order's earlier events in from
      // the stream instead of waiting: waiting spent every delivery and dead-lettered the order's outcome.
      const { events } = await deps.store.load(rec.event.data.orderId);
      for (const earlier of events) if (earlier.seq < rec.seq) await deps.readModel.project(earlier);
      outcome = await deps.readModel.project(rec);
      if (outcome.kind === 'wait') return { nak: WAIT_FOR_PLACED_MS };
    }
    const view = outcome.record.view;
    if (rec.event.name === 'placed') {
      // An order that already ended had its saga; a late replay must not start one again (the engine's
      // run records expire, so its idempotency by run id does not last forever).
      if (view.status !== 'PENDING') return 'ack';
      if (await deps.starter.startedEarly(view.orderId)) return 'ack';
      try {
        const { created, run } = await deps.starter.start(view, envelope.traceparent);
        deps.log.debug({ orderId: view.orderId, created, phase: run.phase }, 'order saga started');
      } catch (err) {
        // A refusal other than `internal` is the same on every retry: dead-letter it with the engine's reason.
        if (err instanceof EngineRequestError && err.code !== 'internal') throw new PoisonMessageError(`saga start refused: ${err.message}`, { cause: err });
        throw err;
      }
    } else {
      await publishOrderEnded(deps.js, rec.event, view, envelope.id);
    }
    return 'ack';
  };
}

async function publishOrderEnded(js: Publisher, event: OrderEvent, view: OrderSnapshot, causationId: string): Promise<void> {
  const data: OrderDomainEvent = { orderId: view.orderId, customerId: view.customerId, total: view.total, status: view.status as OrderDomainEvent['status'] };
  if (view.reason !== undefined) data.reason = view.reason;
  await publishEvent(js, Subjects.domainEvent('order', event.name), {
    type: ceType('order', event.name),
    source: SERVICE,
    data,
    correlationId: view.orderId,
    causationId,
    msgId: domainEventMsgId(view.orderId, event.name),
  });
}

const sagaEventValidator = validator(SagaEvent, 'saga event');
const sagaEndTypes = SagaEndEventNames.map((n) => ceType('saga', n));

/**
 * A run's end → the order's end event, appended after the order's last event (the saga-end listener's path, and the
 * reconciler's when that end event never arrived). Idempotent: an order that already ended takes nothing more.
 * Returns the events appended, or undefined when `ev` is no end.
 */
export async function applySagaEnd(store: Pick<OrderEventStore, 'execute'>, ev: SagaEvent, meta: EventMeta = {}): Promise<OrderEvent[] | undefined> {
  const cmd = endCommandFor(ev);
  return cmd === undefined ? undefined : store.execute(cmd.orderId, cmd, meta);
}

export function sagaEventsHandler(deps: { store: OrderEventStore; log: Logger }) {
  return async (msg: JsMsg): Promise<HandlerResult> => {
    const envelope = decodeMessage(msg, sagaEventValidator, sagaEndTypes);
    const orderId = envelope.data.run.runId;
    try {
      const appended = await applySagaEnd(deps.store, envelope.data, { causationId: envelope.id });
      if (appended !== undefined) deps.log.debug({ orderId, event: envelope.data.event, appended: appended.map((e) => e.name) }, 'saga ended');
    } catch (err) {
      // A run of origin `order` without an order: nothing to end, and retrying will not create one.
      if (err instanceof OrderRejectedError) throw new PoisonMessageError(`saga ${envelope.data.event} for run ${orderId}: ${err.message}`, { cause: err });
      throw err;
    }
    return 'ack';
  };
}
