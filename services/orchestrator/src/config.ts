import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_RUNS_TTL_MS, Ports } from '@sagamesh/contracts';
import { CommonConfig, portConfig } from '@sagamesh/runtime/config';

const ms = (dflt: number, minimum: number, description: string) => Type.Integer({ minimum, default: dflt, description });

export const OrchestratorConfigSchema = Type.Object({
  ...CommonConfig,
  ...portConfig(Ports.orchestrator),
  REPLY_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 64, description: 'Replies handled at once' }),
  API_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 128, description: 'Engine API requests handled at once' }),
  CONSUMER_ACK_WAIT_MS: ms(10_000, 1000, 'AckWait of the replies consumer: how soon an input left unacked by a crash comes back'),
  SWEEP_INTERVAL_MS: ms(2000, 100, 'How often non-terminal runs are checked for an outbox nobody published'),
  SWEEP_GRACE_MS: ms(3000, 100, 'A run untouched this long whose outbox this replica has not published gets it re-published'),
  RUNS_TTL_MS: ms(DEFAULT_RUNS_TTL_MS, 0, 'Run records expire this long after their last change (0 = never)'),
});
export type OrchestratorConfig = Static<typeof OrchestratorConfigSchema>;
