import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { participantConfig } from '@sagamesh/participant/config';

export const InventoryConfigSchema = Type.Object({
  ...participantConfig(Ports.inventory),
  STOCK_EVENT_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 100, description: 'stock_changed events are coalesced over this interval' }),
});
export type InventoryConfig = Static<typeof InventoryConfigSchema>;
