import { Type, type Static } from '@sinclair/typebox';
import { OrderLine } from './api.ts';
import { OrderOwner } from './orders.ts';

/** Order aggregate events (event store `orders.<orderId>`, ce-type sagamesh.order.<name>.v1). */
export const OrderPlaced = Type.Object({
  orderId: Type.String(),
  customerId: Type.String(),
  items: Type.Array(OrderLine),
  total: Type.Integer(),
  owner: Type.Optional(OrderOwner),
});
export type OrderPlaced = Static<typeof OrderPlaced>;
export const OrderEnded = Type.Object({ orderId: Type.String(), reason: Type.Optional(Type.String()) });
export type OrderEnded = Static<typeof OrderEnded>;
export const OrderEventNames = ['placed', 'confirmed', 'cancelled', 'failed'] as const;
export type OrderEventName = (typeof OrderEventNames)[number];

/** Public domain events, on `events.<aggregate>.<type>`. */
export const DomainEvents = {
  orderConfirmed: { aggregate: 'order', type: 'confirmed' },
  orderCancelled: { aggregate: 'order', type: 'cancelled' },
  orderFailed: { aggregate: 'order', type: 'failed' },
  orderPlaced: { aggregate: 'order', type: 'placed' },
  stockChanged: { aggregate: 'inventory', type: 'stock_changed' },
} as const;

export const StockChanged = Type.Object({ skus: Type.Array(Type.String()) });
export type StockChanged = Static<typeof StockChanged>;
