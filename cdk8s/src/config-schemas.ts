/**
 * The config schema each of the platform's processes parses at start, by workload name: the synth checks every
 * workload's environment against it (env-check.ts). Only these pure schema modules are imported from the services.
 */
import { ProvisionConfigSchema } from '../../libs/runtime/src/config.ts';
import { OperatorConfig } from '../../operator/src/config.ts';
import { GatewayConfigSchema } from '../../services/gateway/src/config.ts';
import { InventoryConfigSchema } from '../../services/inventory/src/config.ts';
import { NotificationsConfigSchema } from '../../services/notifications/src/config.ts';
import { OrchestratorConfigSchema } from '../../services/orchestrator/src/config.ts';
import { OrdersConfigSchema } from '../../services/orders/src/config.ts';
import { PaymentsConfigSchema } from '../../services/payments/src/config.ts';
import { ShippingConfigSchema } from '../../services/shipping/src/config.ts';
import type { ConfigSchemas } from './env-check.ts';

export const CONFIG_SCHEMAS: ConfigSchemas = {
  gateway: GatewayConfigSchema,
  orders: OrdersConfigSchema,
  orchestrator: OrchestratorConfigSchema,
  inventory: InventoryConfigSchema,
  payments: PaymentsConfigSchema,
  shipping: ShippingConfigSchema,
  notifications: NotificationsConfigSchema,
  operator: OperatorConfig,
  'nats-provision': ProvisionConfigSchema,
};
