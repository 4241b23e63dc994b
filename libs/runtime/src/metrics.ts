import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Metrics, RejectReasons } from '@sagamesh/contracts';

/** One service's metrics: its own registry (default process metrics unprefixed) and the shared RED/consumer metrics. */
export interface ServiceMetrics {
  service: string;
  /** Register a service's own metrics (saga metrics etc.) here. */
  registry: Registry;
  httpRequests: Counter<'service' | 'route' | 'method' | 'code'>;
  httpDuration: Histogram<'service' | 'route' | 'method'>;
  messagesHandled: Counter<'service' | 'consumer' | 'outcome'>;
  messagesRedelivered: Counter<'service' | 'consumer'>;
  messageDuration: Histogram<'service' | 'consumer'>;
  consumerPending: Gauge<'stream' | 'consumer'>;
  requestsRejected: Counter<'service' | 'reason'>;
}

// Seconds; covers fast in-memory handlers up to step timeouts.
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Histogram<L>({ name, help, labelNames, buckets: DURATION_BUCKETS, registers });
  const metrics: ServiceMetrics = {
    service,
    registry,
    httpRequests: counter(Metrics.httpRequestsTotal, 'HTTP requests served, by route pattern and status code', ['service', 'route', 'method', 'code']),
    httpDuration: histogram(Metrics.httpRequestDurationSeconds, 'HTTP request duration, by route pattern', ['service', 'route', 'method']),
    messagesHandled: counter(Metrics.messagesHandledTotal, 'JetStream messages handled, by outcome (ack, nak, dead_letter, term)', ['service', 'consumer', 'outcome']),
    messagesRedelivered: counter(Metrics.messagesRedeliveredTotal, 'JetStream messages received on a second or later delivery', ['service', 'consumer']),
    messageDuration: histogram(Metrics.messageProcessingDurationSeconds, 'Time spent handling one JetStream message', ['service', 'consumer']),
    consumerPending: new Gauge({
      name: Metrics.consumerPending,
      help: 'Messages not yet delivered to the consumer (JetStream consumer info num_pending)',
      labelNames: ['stream', 'consumer'],
      registers,
    }),
    requestsRejected: counter(Metrics.requestsRejectedTotal, 'Requests rejected before handling, by reason (rate_limit, circuit_open, overload)', ['service', 'reason']),
  };
  // Zero from the start: rate() ignores a series' first sample, so a burst of rejections inside one scrape
  // interval would otherwise never show.
  for (const reason of RejectReasons) metrics.requestsRejected.inc({ service, reason }, 0);
  return metrics;
}
