import { Type, type Static } from '@sinclair/typebox';
import { PlaceOrderRequest } from './api.ts';
import { ID_PATTERN } from './ids.ts';

/**
 * The orders service's internal HTTP API (gateway → orders, port Ports.orders):
 * `POST /orders` with `InternalPlaceOrderRequest` → 202 PlaceOrderResponse (409 `order_exists` when the
 * id is taken by a different order, 422 `unknown_sku`); `GET /orders/:orderId` → OrderView without
 * `saga` (404 `not_found`); `POST /orders/rebuild` (admin) → 200 `RebuildResponse`.
 */
export const OrdersPaths = {
  place: '/orders',
  order: (orderId: string) => `/orders/${orderId}`,
  rebuild: '/orders/rebuild',
} as const;

/** The public request plus an optional order id the gateway derives from the idempotency key. */
export const InternalPlaceOrderRequest = Type.Object(
  {
    ...PlaceOrderRequest.properties,
    orderId: Type.Optional(Type.String({ pattern: ID_PATTERN, description: 'Placing the same id again with the same body is idempotent.' })),
  },
  { additionalProperties: false },
);
export type InternalPlaceOrderRequest = Static<typeof InternalPlaceOrderRequest>;

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
