import { Counter, Gauge, Histogram } from 'prom-client';
import { Metrics } from '@sagamesh/contracts';
import type { ServiceMetrics } from '@sagamesh/runtime';

export interface OperatorMetrics {
  reconciles: Counter<'kind' | 'result'>;
  errors: Counter<'kind'>;
  duration: Histogram<'kind'>;
  queueDepth: Gauge;
  isLeader: Gauge;
}

export function createOperatorMetrics(service: ServiceMetrics): OperatorMetrics {
  const registers = [service.registry];
  return {
    reconciles: new Counter({ name: Metrics.operatorReconcilesTotal, help: 'Reconciles, by kind and result (success, error)', labelNames: ['kind', 'result'], registers }),
    errors: new Counter({ name: Metrics.operatorReconcileErrorsTotal, help: 'Reconciles that failed and were requeued with backoff', labelNames: ['kind'], registers }),
    duration: new Histogram({
      name: Metrics.operatorReconcileDurationSeconds,
      help: 'Duration of one reconcile (engine requests and Kubernetes writes included)',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueDepth: new Gauge({ name: Metrics.operatorQueueDepth, help: 'Keys waiting in the work queue', registers }),
    isLeader: new Gauge({ name: Metrics.operatorIsLeader, help: '1 while this replica holds the leader Lease', registers }),
  };
}
