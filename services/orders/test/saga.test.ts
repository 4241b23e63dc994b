import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SagaInput, StartRequest, validator, type RunView, type SagaEvent } from '@sagamesh/contracts';
import { endCommandFor, endEventOf, sagaStartRequest } from '../src/saga.ts';
import type { OrderSnapshot } from '../src/domain.ts';

const order: OrderSnapshot = {
  orderId: 'ord-1',
  customerId: 'c-1',
  items: [{ sku: 'sku-1', quantity: 2, unitPrice: 8999 }],
  total: 17998,
  status: 'PENDING',
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
};
const run: RunView = {
  runId: 'ord-1', definitionKey: 'builtin.order-fulfillment', revision: 'r1', origin: 'order', phase: 'Running',
  steps: [], startedAt: '2025-01-01T00:00:00.000Z', version: 3,
};

test('the start request is the contracts shape: run id = order id, input without prices', () => {
  const req = sagaStartRequest(order, 'rev-1', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.ok(validator(StartRequest, 'start').check(req));
  assert.ok(validator(SagaInput, 'input').check(req.input));
  assert.deepEqual(req, {
    runId: 'ord-1', definitionKey: 'builtin.order-fulfillment', revision: 'rev-1', origin: 'order',
    input: { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 2 }], amountCents: 17998 },
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  });
  assert.equal('traceparent' in sagaStartRequest(order, 'rev-1'), false);
});

test('only a run end moves the order; the reason comes from the run error', () => {
  const ev = (event: SagaEvent['event'], r: Partial<RunView> = {}): SagaEvent => ({ event, run: { ...run, ...r } });
  assert.equal(endCommandFor(ev('started')), undefined);
  assert.equal(endCommandFor(ev('step_failed', { phase: 'Compensating' })), undefined);
  assert.deepEqual(endCommandFor(ev('succeeded', { phase: 'Succeeded' })), { kind: 'confirm', orderId: 'ord-1' });
  assert.deepEqual(endCommandFor(ev('compensated', { phase: 'Compensated', error: { code: 'declined', message: 'card declined' } })), { kind: 'cancel', orderId: 'ord-1', reason: 'declined: card declined' });
  assert.deepEqual(endCommandFor(ev('failed', { phase: 'Failed' })), { kind: 'fail', orderId: 'ord-1', reason: 'saga failed' });
});

test('a run ended in the engine stands for its end event (the reconciler applies it); a run not ended for none', () => {
  for (const phase of ['Pending', 'Running', 'Compensating'] as const) assert.equal(endEventOf({ ...run, phase }), undefined);
  for (const [phase, event] of [['Succeeded', 'succeeded'], ['Compensated', 'compensated'], ['Failed', 'failed']] as const) {
    const ended = { ...run, phase };
    assert.deepEqual(endEventOf(ended), { event, run: ended });
  }
});
