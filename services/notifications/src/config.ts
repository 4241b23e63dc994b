import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig } from '@sagamesh/kit';

export const NotificationsConfigSchema = Type.Object({
  ...CommonConfig,
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: Ports.notifications, description: 'HTTP port (0 picks a free one)' }),
  CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight order events' }),
});
export type NotificationsConfig = Static<typeof NotificationsConfigSchema>;
