/**
 * Notifications react to the order's end events (choreography: nobody commands them). One
 * notification per order and type, recorded in KV `notifications` with a create, so a redelivered
 * or duplicated event notifies nobody twice.
 */
import { DomainEvents, OrderDomainEvent, Subjects, ceType, isValidId, isWrongLastSequence, parseCeType, validator } from '@sagamesh/contracts';
import { decodeMessage, type HandlerResult, type JsMsg, type Logger, PoisonMessageError } from '@sagamesh/runtime';

const ORDER_END_EVENTS = [DomainEvents.orderConfirmed, DomainEvents.orderCancelled, DomainEvents.orderFailed];
export const notificationSubjects = ORDER_END_EVENTS.map((e) => Subjects.domainEvent(e.aggregate, e.type));
const eventTypes = ORDER_END_EVENTS.map((e) => ceType(e.aggregate, e.type));
const eventValidator = validator(OrderDomainEvent, 'order event');

export interface Notification {
  orderId: string;
  type: string;
  /** ce-id of the event that caused it. */
  eventId: string;
  sentAt: string;
}

export const notificationKey = (orderId: string, type: string) => `${orderId}.${type}`;

/** `create` stores a record under a key that must not exist yet (a compare-and-set refusal otherwise). */
export function notificationHandler(create: (key: string, value: string) => Promise<unknown>, log: Logger) {
  return async (msg: JsMsg): Promise<HandlerResult> => {
    const env = decodeMessage(msg, eventValidator, eventTypes);
    const type = parseCeType(env.type)!.name;
    const { orderId } = env.data;
    if (!isValidId(orderId)) throw new PoisonMessageError(`order id "${orderId}" is not a valid id ([A-Za-z0-9_-]{1,128})`);
    const rec: Notification = { orderId, type, eventId: env.id, sentAt: new Date().toISOString() };
    try {
      await create(notificationKey(orderId, type), JSON.stringify(rec));
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      log.debug({ orderId, type }, 'notification already sent');
      return 'ack';
    }
    // Only the order id: the customer's details stay out of the logs.
    log.info({ orderId, type }, 'notification sent');
    return 'ack';
  };
}
