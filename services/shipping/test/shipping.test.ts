import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ledgerContribution } from '@sagamesh/participant';
import { shipmentId, shippingBooks, shippingBooksReply, shippingStepBooks } from '../src/shipping.ts';

test('a cancel counts only a shipment that was created', () => {
  assert.deepEqual(shippingBooks({ origin: 'order', action: { outcome: 'succeeded' }, compensation: { outcome: 'succeeded' } }), { created: 1, cancelled: 1 });
  assert.deepEqual(shippingBooks({ origin: 'order', compensation: { outcome: 'succeeded' } }), { created: 0, cancelled: 0 });
  assert.deepEqual(shippingBooks({ origin: 'order', action: { outcome: 'failed' }, compensation: { outcome: 'succeeded' } }), { created: 0, cancelled: 0 });
});

test('the books are kept per origin, and the shipment id follows from the step key', () => {
  const t = shippingStepBooks({ origin: 'k8s', action: { outcome: 'succeeded' } });
  assert.deepEqual(shippingBooksReply(t), { order: { created: 0, cancelled: 0 }, k8s: { created: 1, cancelled: 0 } });
  // A cancel's own record copies its shipment's: it adds only the cancel.
  const cancel = ledgerContribution(shippingStepBooks)('step.r.s.compensate', { origin: 'order', action: { outcome: 'succeeded' }, compensation: { outcome: 'succeeded' } });
  assert.deepEqual(shippingBooksReply(cancel.books), { order: { created: 0, cancelled: 1 }, k8s: { created: 0, cancelled: 0 } });
  assert.equal(shipmentId('r-1.create-shipment'), 'shp.r-1.create-shipment');
  assert.notEqual(shipmentId('r-1.create-shipment'), shipmentId('r-2.create-shipment'));
});
