/**
 * The order aggregate, pure: `decide(state, command) → events` and `evolve(state, event) → state`.
 * The same `evolve` builds the aggregate state (from the event store) and the read model (the
 * projection), so the view a rebuild produces is the view the live projector produced.
 */
import type { CatalogueEntry, OrderEnded, OrderEventName, OrderPlaced, OrderStatus, PlaceOrderRequest, StoredOrderView } from '@sagamesh/contracts';

export type OrderLine = OrderPlaced['items'][number];
/** The read-model view of an order (contracts' StoredOrderView: the OrderView without the gateway's parts, plus the owner). */
export type OrderSnapshot = StoredOrderView;
/** State of one order: undefined until it is placed. */
export type OrderState = OrderSnapshot | undefined;

export type EndEventName = Exclude<OrderEventName, 'placed'>;
export type OrderEvent = { name: 'placed'; data: OrderPlaced } | { name: EndEventName; data: OrderEnded };
/** An event as stored: its stream sequence and its time (ce-time) come from the store. */
export interface RecordedEvent {
  event: OrderEvent;
  seq: number;
  at: string;
}

export type OrderCommand =
  /** `owner`: the placing caller's scope (contracts' OrderOwner); absent, only admins read the order. */
  | { kind: 'place'; orderId: string; customerId: string; items: OrderLine[]; total: number; owner?: string }
  | { kind: 'confirm'; orderId: string }
  | { kind: 'cancel'; orderId: string; reason: string }
  | { kind: 'fail'; orderId: string; reason: string };

export type DecisionRejection = { code: 'order_exists'; message: string } | { code: 'not_found'; message: string };
export type Decision = { ok: true; events: OrderEvent[] } | { ok: false; rejection: DecisionRejection };

const endStatus: Record<EndEventName, OrderStatus> = { confirmed: 'CONFIRMED', cancelled: 'CANCELLED', failed: 'FAILED' };
const commandEvent = { confirm: 'confirmed', cancel: 'cancelled', fail: 'failed' } as const;

export const isTerminal = (state: OrderState): boolean => state !== undefined && state.status !== 'PENDING';

function samePlacement(state: OrderSnapshot, cmd: Extract<OrderCommand, { kind: 'place' }>): boolean {
  return (
    state.customerId === cmd.customerId &&
    state.owner === cmd.owner &&
    state.total === cmd.total &&
    state.items.length === cmd.items.length &&
    state.items.every((l, i) => l.sku === cmd.items[i]!.sku && l.quantity === cmd.items[i]!.quantity && l.unitPrice === cmd.items[i]!.unitPrice)
  );
}

export function decide(state: OrderState, cmd: OrderCommand): Decision {
  if (cmd.kind === 'place') {
    if (state === undefined) {
      const { orderId, customerId, items, total, owner } = cmd;
      const data: OrderPlaced = { orderId, customerId, items, total };
      if (owner !== undefined) data.owner = owner;
      return { ok: true, events: [{ name: 'placed', data }] };
    }
    // The same order placed again (a retried request) is a no-op; a different one under the same id (or by another
    // caller) is refused.
    if (samePlacement(state, cmd)) return { ok: true, events: [] };
    return { ok: false, rejection: { code: 'order_exists', message: `order ${cmd.orderId} exists with different content` } };
  }
  if (state === undefined) return { ok: false, rejection: { code: 'not_found', message: `order ${cmd.orderId} was never placed` } };
  // A terminal order never changes: the first end wins, later ones (duplicates, races) are no-ops.
  if (isTerminal(state)) return { ok: true, events: [] };
  const name = commandEvent[cmd.kind];
  const data: OrderEnded = cmd.kind === 'confirm' ? { orderId: cmd.orderId } : { orderId: cmd.orderId, reason: cmd.reason };
  return { ok: true, events: [{ name, data }] };
}

export function evolve(state: OrderState, rec: RecordedEvent): OrderState {
  const { event, at } = rec;
  if (event.name === 'placed') {
    if (state !== undefined) return state;
    const { orderId, customerId, items, total, owner } = event.data;
    const placed: OrderSnapshot = { orderId, customerId, items, total, status: 'PENDING', createdAt: at, updatedAt: at };
    // Events from before owners were recorded have none: such an order is read by admin keys only.
    if (owner !== undefined) placed.owner = owner;
    return placed;
  }
  if (state === undefined || isTerminal(state)) return state;
  const next: OrderSnapshot = { ...state, status: endStatus[event.name], updatedAt: at };
  if (event.data.reason !== undefined) next.reason = event.data.reason;
  return next;
}

export const replay = (events: readonly RecordedEvent[]): OrderState => events.reduce<OrderState>(evolve, undefined);

// ---- Pricing: the request's lines priced from the catalogue ----

export type Pricing = { ok: true; items: OrderLine[]; total: number } | { ok: false; unknownSkus: string[] };

export function priceOrder(request: PlaceOrderRequest, catalogue: readonly CatalogueEntry[]): Pricing {
  const prices = new Map<string, number>(catalogue.map((c) => [c.sku, c.price]));
  const unknownSkus = [...new Set(request.items.map((i) => i.sku).filter((sku) => !prices.has(sku)))];
  if (unknownSkus.length > 0) return { ok: false, unknownSkus };
  const items = request.items.map((i) => ({ sku: i.sku, quantity: i.quantity, unitPrice: prices.get(i.sku)! }));
  return { ok: true, items, total: items.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0) };
}
