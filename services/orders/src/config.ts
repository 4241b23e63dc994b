import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig, portConfig } from '@sagamesh/runtime/config';

export const OrdersConfigSchema = Type.Object({
  ...CommonConfig,
  ...portConfig(Ports.orders),
  ENGINE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000, description: 'Timeout of one saga engine request' }),
  PROJECTOR_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight events of the orders-projector consumer' }),
  RECENT_ORDERS: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 50_000, description: 'Pending orders whose state and view record are kept in memory, so their end event skips reading them' }),
  SAGA_EVENTS_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight events of the orders-saga-events consumer' }),
  RECONCILE_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000, description: 'How often (±25 % jitter) the reconciler asks the engine how the runs of orders PENDING past PENDING_AFTER_MS ended' }),
  PENDING_AFTER_MS: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 120_000, description: 'An order still PENDING this long after it was placed is reconciled: its run\'s end applied, or its saga started again when the engine has no run' }),
});
export type OrdersConfig = Static<typeof OrdersConfigSchema>;
