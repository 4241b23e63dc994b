import { runMain } from '@sagamesh/kit';
import { GatewayConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('gateway', GatewayConfigSchema, start);
