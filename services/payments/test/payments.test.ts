import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RunOrigin, StepResult } from '@sagamesh/contracts';
import { paymentBooks, paymentContribution, paymentsBooksReply, type PaymentRecord } from '../src/payments.ts';

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

test('property: per origin, the books hold exactly the succeeded charges and the refunds of those, each origin apart', () => {
  fc.assert(
    fc.property(fc.array(arbRecord, { maxLength: 30 }), (recs) => {
      const totals: Record<string, number> = {};
      recs.forEach((r, i) => {
        for (const [k, v] of Object.entries(paymentContribution(`step.r${i}.s`, r))) totals[k] = (totals[k] ?? 0) + v;
      });
      const audit = paymentsBooksReply(totals);
      for (const o of ['order', 'k8s'] as const) {
        const charges = recs.filter((r) => r.origin === o && r.action?.outcome === 'succeeded');
        const sum = (rs: readonly PaymentRecord[]) => rs.reduce((n, r) => n + r.data!.amountCents, 0);
        assert.equal(audit[o].charged, sum(charges));
        assert.equal(audit[o].refunded, sum(charges.filter((r) => r.compensation?.outcome === 'succeeded')), 'a refund only gives back a charge that happened');
      }
    }),
  );
});
