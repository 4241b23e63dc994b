import { runMain } from '@sagamesh/kit';
import { NotificationsConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('notifications', NotificationsConfigSchema, start);
