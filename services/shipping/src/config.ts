import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig } from '@sagamesh/kit';

export const ShippingConfigSchema = Type.Object({
  ...CommonConfig,
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: Ports.shipping, description: 'HTTP port (0 picks a free one)' }),
  CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight commands' }),
  COMMAND_ACK_WAIT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description: 'AckWait of the commands consumer: longer than any step timeout (injected latency keeps the message alive)',
  }),
});
export type ShippingConfig = Static<typeof ShippingConfigSchema>;
