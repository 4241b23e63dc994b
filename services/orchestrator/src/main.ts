import { runMain } from '@sagamesh/kit';
import { OrchestratorConfigSchema } from './config.ts';
import { start } from './index.ts';

await runMain('orchestrator', OrchestratorConfigSchema, start);
