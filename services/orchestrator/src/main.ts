import { runMain } from '@sagamesh/runtime';
import { OrchestratorConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('orchestrator', OrchestratorConfigSchema, start);
