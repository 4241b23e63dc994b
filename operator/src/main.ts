import { runMain } from '@sagamesh/kit';
import { OperatorConfig, start } from './index.ts';

await runMain('operator', OperatorConfig, start);
