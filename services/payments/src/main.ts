import { runMain } from '@sagamesh/runtime';
import { PaymentsConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('payments', PaymentsConfigSchema, start);
