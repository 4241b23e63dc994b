import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RunOrigin, StepResult } from '@sagamesh/contracts';
import { ledgerContribution, StepLedger } from '@sagamesh/participant';
import { applyDelta, type Books } from '@sagamesh/runtime';
import { paymentBooks, paymentStepBooks, paymentsBooksReply, type PaymentRecord } from '../src/payments.ts';

const ok: StepResult = { outcome: 'succeeded' };
const no: StepResult = { outcome: 'failed', error: { code: 'injected_failure', message: 'x' } };

test('a refund gives back exactly what its charge took: nothing for a failed charge or a tombstone', () => {
  assert.deepEqual(paymentBooks({ origin: 'order', action: ok, data: { amountCents: 500 }, compensation: ok }), { charged: 500, refunded: 500 });
  assert.deepEqual(paymentBooks({ origin: 'order', action: no, compensation: ok }), { charged: 0, refunded: 0 });
  assert.deepEqual(paymentBooks({ origin: 'order', compensation: ok }), { charged: 0, refunded: 0 });
  assert.deepEqual(paymentBooks({ origin: 'order', action: ok, data: { amountCents: 500 } }), { charged: 500, refunded: 0 });
});

const arbRecord: fc.Arbitrary<PaymentRecord> = fc.record({
  origin: fc.constantFrom<RunOrigin>('order', 'k8s'),
  action: fc.option(fc.constantFrom(ok, no), { nil: undefined }),
  data: fc.record({ amountCents: fc.integer({ min: 0, max: 1_000_000 }) }),
  compensation: fc.option(fc.constant(ok), { nil: undefined }),
});

const contribution = ledgerContribution(paymentStepBooks);

/** The ledger records one step leaves: the action's, and the compensation's own one (a copy with it) or a tombstone; or one record of the older layout. */
function recordsOf(step: PaymentRecord, i: number, olderLayout: boolean): [string, PaymentRecord][] {
  const key = StepLedger.keyOf(`r${i}.charge-payment`);
  if (olderLayout || !step.action || !step.compensation) return [[key, step]];
  const { compensation: _, ...action } = step;
  return [
    [key, action],
    [StepLedger.keyOf(`r${i}.charge-payment.compensate`), step],
  ];
}

test('property: per origin, the ledger records add up to exactly the succeeded charges and the refunds of those, in either layout', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(arbRecord, fc.boolean()), { maxLength: 30 }), (steps) => {
      const totals: Books = {};
      steps.forEach(([step, olderLayout], i) => {
        for (const [key, rec] of recordsOf(step, i, olderLayout)) {
          const c = contribution(key, rec);
          assert.ok(c.settled, 'a ledger record is written once');
          applyDelta(totals, c.books);
        }
      });
      const audit = paymentsBooksReply(totals);
      const recs = steps.map(([step]) => step);
      for (const o of ['order', 'k8s'] as const) {
        const charges = recs.filter((r) => r.origin === o && r.action?.outcome === 'succeeded');
        const sum = (rs: readonly PaymentRecord[]) => rs.reduce((n, r) => n + r.data!.amountCents, 0);
        assert.equal(audit[o].charged, sum(charges));
        assert.equal(audit[o].refunded, sum(charges.filter((r) => r.compensation?.outcome === 'succeeded')), 'a refund only gives back a charge that happened');
      }
    }),
  );
});
