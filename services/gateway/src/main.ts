import { runMain } from '@sagamesh/runtime';
import { GatewayConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('gateway', GatewayConfigSchema, start);
