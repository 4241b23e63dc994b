import { runMain } from '@sagamesh/runtime';
import { ShippingConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('shipping', ShippingConfigSchema, start);
