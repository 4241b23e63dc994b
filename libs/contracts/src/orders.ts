import { Type, type Static } from '@sinclair/typebox';
import { OrderView, PlaceOrderRequest } from './api.ts';
import { ID_PATTERN } from './ids.ts';

/**
 * The orders service's internal HTTP API (gateway → orders, port Ports.orders):
 * `POST /orders` with `InternalPlaceOrderRequest` → 202 PlaceOrderResponse (409 `order_exists` when the
 * id is taken by a different order, 422 `unknown_sku`); `GET /orders/:orderId` → `StoredOrderView`
 * (404 `not_found`); `POST /orders/rebuild` (admin) → 200 `RebuildResponse`.
 */
export const OrdersPaths = {
  place: '/orders',
  order: (orderId: string) => `/orders/${orderId}`,
  rebuild: '/orders/rebuild',
} as const;

/**
 * Who placed an order: the gateway's caller scope (a hash of the API key, never the key itself). Through the
 * gateway only that caller and admin keys read the order; an order without one (placed before owners were
 * recorded, or straight at orders' internal API) is read by admin keys only.
 */
export const OrderOwner = Type.String({ pattern: ID_PATTERN, description: "The placing API key's scope (a hash, never the key)" });

/** The public request plus an optional order id the gateway derives from the idempotency key, and the caller's scope. */
export const InternalPlaceOrderRequest = Type.Object(
  {
    ...PlaceOrderRequest.properties,
    orderId: Type.Optional(Type.String({ pattern: ID_PATTERN, description: 'Placing the same id again with the same body is idempotent.' })),
    owner: Type.Optional(OrderOwner),
  },
  { additionalProperties: false },
);
export type InternalPlaceOrderRequest = Static<typeof InternalPlaceOrderRequest>;

/** `GET /orders/:orderId`: the order as orders stores it — the public OrderView without `saga` and `degraded`, plus its owner. */
export const StoredOrderView = Type.Object({
  ...Type.Omit(OrderView, ['saga', 'degraded']).properties,
  owner: Type.Optional(OrderOwner),
});
export type StoredOrderView = Static<typeof StoredOrderView>;

export const RebuildResponse = Type.Object({ events: Type.Integer(), orders: Type.Integer(), lastSeq: Type.Integer() });
export type RebuildResponse = Static<typeof RebuildResponse>;

/**
 * Data of the public order events `events.order.<confirmed|cancelled|failed>` (ce-type
 * `sagamesh.order.<type>.v1`, Nats-Msg-Id `<orderId>.<type>`): OrderEnded plus what a reader needs.
 */
export const OrderDomainEvent = Type.Object({
  orderId: Type.String(),
  customerId: Type.String(),
  total: Type.Integer({ description: 'cents' }),
  status: Type.Union([Type.Literal('CONFIRMED'), Type.Literal('CANCELLED'), Type.Literal('FAILED')]),
  reason: Type.Optional(Type.String()),
});
export type OrderDomainEvent = Static<typeof OrderDomainEvent>;
