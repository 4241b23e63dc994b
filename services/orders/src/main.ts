import { runMain } from '@sagamesh/runtime';
import { OrdersConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('orders', OrdersConfigSchema, start);
