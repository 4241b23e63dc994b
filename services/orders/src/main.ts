import { runMain } from '@sagamesh/kit';
import { OrdersConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('orders', OrdersConfigSchema, start);
