import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig } from '@sagamesh/kit';

const ms = (dflt: number, minimum: number, description: string) => Type.Integer({ minimum, default: dflt, description });

export const OrchestratorConfigSchema = Type.Object({
  ...CommonConfig,
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: Ports.orchestrator, description: 'HTTP port of /livez, /readyz, /metrics (0 = any free one)' }),
  REPLY_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 64, description: 'Replies handled at once' }),
  API_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 128, description: 'Engine API requests handled at once' }),
  CONSUMER_ACK_WAIT_MS: ms(10_000, 1000, 'AckWait of the replies consumer: how soon an input left unacked by a crash comes back'),
  SWEEP_INTERVAL_MS: ms(2000, 100, 'How often non-terminal runs are checked for an outbox nobody published'),
  SWEEP_GRACE_MS: ms(3000, 100, 'A run untouched this long whose outbox this replica has not published gets it re-published'),
  RUNS_TTL_MS: ms(7 * 24 * 3600 * 1000, 0, 'Run records expire this long after their last change (0 = never)'),
});
export type OrchestratorConfig = Static<typeof OrchestratorConfigSchema>;
