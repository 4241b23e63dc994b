import { runMain } from '@sagamesh/runtime';
import { OperatorConfig, start } from './index.ts';

await runMain('operator', OperatorConfig, start);
