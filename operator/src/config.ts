import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig, ConfigError, portConfig } from '@sagamesh/runtime/config';

export const OperatorConfig = Type.Object({
  ...CommonConfig,
  ...portConfig(Ports.operator),
  KUBECONFIG: Type.String({ default: '', description: 'Path to a kubeconfig; empty = in-cluster service account' }),
  WATCH_NAMESPACE: Type.String({ default: '', description: 'Watch only this namespace; empty = all namespaces' }),
  WORKERS: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Reconciles running at once' }),
  RESYNC_MS: Type.Integer({ minimum: 1000, default: 60_000, description: 'Every unfinished Saga and every SagaDefinition is reconciled at least this often' }),
  ENGINE_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000, description: 'Timeout of one engine request over NATS' }),
  IDENTITY: Type.String({ default: '', description: 'This replica in the Lease and in Events (the pod name); empty = <hostname>-<pid>' }),
  LEASE_NAME: Type.String({ minLength: 1, default: 'sagamesh-operator' }),
  LEASE_NAMESPACE: Type.String({ minLength: 1, default: 'default', description: 'Where the leader-election Lease lives (the pod namespace)' }),
  LEASE_DURATION_MS: Type.Integer({ minimum: 1000, default: 15_000, description: 'A candidate takes over after seeing no renewal for this long' }),
  LEASE_RENEW_DEADLINE_MS: Type.Integer({ minimum: 100, default: 10_000, description: 'The leader steps down when it could not renew for this long' }),
  LEASE_RETRY_PERIOD_MS: Type.Integer({ minimum: 50, default: 2000, description: 'How often the lease is renewed or tried' }),
});
export type OperatorConfig = Static<typeof OperatorConfig>;

/** What the schema cannot say: the lease timings must nest (retry < renew deadline < lease duration). */
export function checkLeaseTimings(config: OperatorConfig): void {
  const issues: string[] = [];
  if (config.LEASE_RENEW_DEADLINE_MS >= config.LEASE_DURATION_MS) issues.push('LEASE_RENEW_DEADLINE_MS must be shorter than LEASE_DURATION_MS (a leader steps down before another may take over)');
  if (config.LEASE_RETRY_PERIOD_MS >= config.LEASE_RENEW_DEADLINE_MS) issues.push('LEASE_RETRY_PERIOD_MS must be shorter than LEASE_RENEW_DEADLINE_MS (a leader gets several tries to renew)');
  if (issues.length > 0) throw new ConfigError(issues);
}
