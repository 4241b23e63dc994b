import { runMain } from '@sagamesh/runtime';
import { InventoryConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('inventory', InventoryConfigSchema, start);
