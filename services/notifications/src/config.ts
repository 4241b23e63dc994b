import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig, portConfig } from '@sagamesh/runtime/config';

export const NotificationsConfigSchema = Type.Object({
  ...CommonConfig,
  ...portConfig(Ports.notifications),
  CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight order events' }),
});
export type NotificationsConfig = Static<typeof NotificationsConfigSchema>;
