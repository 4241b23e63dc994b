/** Builders of observed objects for the operator's unit tests. */
import {
  SAGA_FINALIZER,
  SAGAMESH_API_VERSION,
  orderFulfillmentDefinition,
  type RunView,
  type SagaDefinitionObject,
  type SagaDefinitionSpec,
  type SagaObject,
  type SagaPhase,
  type SagaStatus,
  type StepState,
} from '@sagamesh/contracts';

export const NOW = '2025-01-01T00:00:10.000Z';

/** The built-in definition with every step's timeout set to `timeout`: room for injected latency under it. */
export const builtinWithStepTimeout = (timeout: string): SagaDefinitionSpec => ({
  ...structuredClone(orderFulfillmentDefinition),
  steps: orderFulfillmentDefinition.steps.map((s) => ({ ...s, timeout })),
});

/** Faults that delay each action of the built-in steps by `ms` (a Saga's `spec.faults`): the run stays Running that long. */
export const slowSteps = (ms: number) =>
  ['inventory.reserve', 'payments.charge', 'shipping.create'].map((target) => ({ target, failureRate: 0, latencyMs: ms, crashAfterCommit: false }));
export const UID = '0b8f6a3e-1111-4222-8333-944455556666';

export function saga(opts: { finalizer?: boolean; deleting?: boolean; status?: SagaStatus; generation?: number; faults?: boolean } = {}): SagaObject {
  return {
    apiVersion: SAGAMESH_API_VERSION,
    kind: 'Saga',
    metadata: {
      name: 'order-1',
      namespace: 'shop',
      uid: UID,
      generation: opts.generation ?? 1,
      resourceVersion: '10',
      ...(opts.finalizer ? { finalizers: [SAGA_FINALIZER] } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2025-01-01T00:00:05Z' } : {}),
    },
    spec: {
      definitionRef: { name: 'order-fulfillment' },
      input: { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1 }], amountCents: 100 },
      ...(opts.faults ? { faults: [{ target: 'payments.charge', failureRate: 1, latencyMs: 0, crashAfterCommit: false }] } : {}),
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

export function definition(opts: { ready?: 'True' | 'False' | 'none'; stale?: boolean; revision?: string } = {}): SagaDefinitionObject {
  const ready = opts.ready ?? 'True';
  return {
    apiVersion: SAGAMESH_API_VERSION,
    kind: 'SagaDefinition',
    metadata: { name: 'order-fulfillment', namespace: 'shop', uid: 'def-uid', generation: 2, resourceVersion: '5' },
    spec: structuredClone(orderFulfillmentDefinition),
    ...(ready === 'none'
      ? {}
      : {
          status: {
            observedGeneration: opts.stale ? 1 : 2,
            key: 'k8s.shop.order-fulfillment',
            ...(ready === 'True' ? { revision: opts.revision ?? 'rev-2' } : {}),
            stepCount: 3,
            conditions: [
              { type: 'Ready', status: ready, reason: ready === 'True' ? 'Registered' : 'Invalid', message: ready === 'True' ? 'registered' : 'step names must be unique', lastTransitionTime: NOW, observedGeneration: 2 },
            ],
          },
        }),
  };
}

const stepNames = ['reserve-inventory', 'charge-payment', 'create-shipment'];

export function step(name: string, status: StepState['status'], attempts = status === 'Pending' ? 0 : 1, compensationAttempts = 0): StepState {
  return {
    name,
    status,
    attempts,
    compensationAttempts,
    ...(attempts > 0 ? { startedAt: '2025-01-01T00:00:01.000Z' } : {}),
    ...(['Succeeded', 'Failed', 'TimedOut', 'Compensating', 'Compensated', 'CompensationFailed'].includes(status) ? { endedAt: '2025-01-01T00:00:02.000Z' } : {}),
    ...(status === 'Failed' ? { error: { code: 'injected', message: 'injected failure' } } : {}),
  };
}

export function run(phase: SagaPhase, statuses: StepState['status'][] = [], opts: { currentStep?: string; version?: number } = {}): RunView {
  const steps = stepNames.map((n, i) => step(n, statuses[i] ?? 'Pending'));
  const current = opts.currentStep ?? (phase === 'Running' || phase === 'Compensating' ? steps.find((s) => s.status === 'Running' || s.status === 'Compensating')?.name : undefined);
  return {
    runId: UID,
    definitionKey: 'k8s.shop.order-fulfillment',
    revision: 'rev-2',
    origin: 'k8s',
    phase,
    ...(current ? { currentStep: current } : {}),
    steps,
    startedAt: '2025-01-01T00:00:00.000Z',
    ...(['Succeeded', 'Compensated', 'Failed'].includes(phase) ? { endedAt: '2025-01-01T00:00:09.000Z' } : {}),
    ...(phase === 'Compensated' ? { error: { code: 'injected', message: 'injected failure' } } : {}),
    version: opts.version ?? 1,
  };
}
