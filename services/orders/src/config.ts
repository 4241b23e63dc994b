import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig } from '@sagamesh/kit';

export const OrdersConfigSchema = Type.Object({
  ...CommonConfig,
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: Ports.orders, description: 'HTTP port (0 picks a free one)' }),
  ENGINE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000, description: 'Timeout of one saga engine request' }),
  PROJECTOR_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight events of the orders-projector consumer' }),
  RECENT_ORDERS: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 50_000, description: 'Pending orders whose state and view record are kept in memory, so their end event skips reading them' }),
  SAGA_EVENTS_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight events of the orders-saga-events consumer' }),
});
export type OrdersConfig = Static<typeof OrdersConfigSchema>;
