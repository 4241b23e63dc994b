import { runMain } from '@sagamesh/runtime';
import { NotificationsConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('notifications', NotificationsConfigSchema, start);
