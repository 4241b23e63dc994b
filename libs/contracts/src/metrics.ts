/**
 * Metric names (prefix sagamesh_; no ids in labels). prom-client's default process
 * metrics stay unprefixed. Dashboards and alerts import these names too.
 */
export const METRIC_PREFIX = 'sagamesh_';
export const Metrics = {
  httpRequestsTotal: 'sagamesh_http_requests_total',
  httpRequestDurationSeconds: 'sagamesh_http_request_duration_seconds',
  sagaStartedTotal: 'sagamesh_saga_started_total',
  sagaEndedTotal: 'sagamesh_saga_ended_total',
  sagaDurationSeconds: 'sagamesh_saga_duration_seconds',
  sagaStepDurationSeconds: 'sagamesh_saga_step_duration_seconds',
  sagaStepRetriesTotal: 'sagamesh_saga_step_retries_total',
  sagaCompensationsTotal: 'sagamesh_saga_compensations_total',
  sagaInFlight: 'sagamesh_saga_in_flight',
  sagaStuck: 'sagamesh_saga_stuck',
  messagesHandledTotal: 'sagamesh_messages_handled_total',
  messagesRedeliveredTotal: 'sagamesh_messages_redelivered_total',
  messageProcessingDurationSeconds: 'sagamesh_message_processing_duration_seconds',
  consumerPending: 'sagamesh_consumer_pending',
  streamBytes: 'sagamesh_stream_bytes',
  streamMaxBytes: 'sagamesh_stream_max_bytes',
  circuitBreakerState: 'sagamesh_circuit_breaker_state',
  requestsRejectedTotal: 'sagamesh_requests_rejected_total',
  // orders
  ordersReconciledTotal: 'sagamesh_orders_reconciled_total',
  // operator
  operatorReconcilesTotal: 'sagamesh_operator_reconciles_total',
  operatorReconcileErrorsTotal: 'sagamesh_operator_reconcile_errors_total',
  operatorReconcileDurationSeconds: 'sagamesh_operator_reconcile_duration_seconds',
  operatorQueueDepth: 'sagamesh_operator_queue_depth',
  operatorIsLeader: 'sagamesh_operator_is_leader',
} as const;

export const SagaOutcomes = ['succeeded', 'compensated', 'failed'] as const;
/** `term`: a handler ended a message on purpose without dead-lettering it (e.g. a stale timer). */
export const MessageOutcomes = ['ack', 'nak', 'dead_letter', 'term'] as const;
export const RejectReasons = ['rate_limit', 'circuit_open', 'overload'] as const;
/**
 * orders_reconciled_total{outcome}: what the reconciler did for an order left PENDING past the bound — appended
 * the end its run had reached (confirmed, cancelled, failed), or started a run the engine did not know (restarted).
 */
export const ReconcileOutcomes = ['confirmed', 'cancelled', 'failed', 'restarted'] as const;
/** circuit_breaker_state values. */
export const CircuitState = { closed: 0, halfOpen: 1, open: 2 } as const;
