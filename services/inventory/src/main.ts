import { runMain } from '@sagamesh/kit';
import { InventoryConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('inventory', InventoryConfigSchema, start);
