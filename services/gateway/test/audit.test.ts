import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Audit, validator } from '@sagamesh/contracts';
import { assembleAudit } from '../src/audit.ts';

test('the audit puts order-origin books on top and k8s-origin ones under k8s, and nothing else', () => {
  const audit = assembleAudit({
    inventory: { skus: { 'sku-1': { initial: 10, available: 6, reserved: 1, sold: 2, soldK8s: 1 } } },
    payments: { order: { charged: 500, refunded: 100 }, k8s: { charged: 70, refunded: 0 } },
    shipping: { order: { created: 3, cancelled: 1 }, k8s: { created: 1, cancelled: 0 } },
    orders: { confirmed: { count: 2, total: 400 }, cancelled: { count: 1 }, pending: { count: 0 }, failed: { count: 0 } },
  });
  assert.deepEqual(audit, {
    skus: { 'sku-1': { initial: 10, available: 6, reserved: 1, sold: 2, soldK8s: 1 } },
    payments: { charged: 500, refunded: 100 },
    shipping: { created: 3, cancelled: 1 },
    orders: { confirmed: { count: 2, total: 400 }, cancelled: { count: 1 }, pending: { count: 0 }, failed: { count: 0 } },
    k8s: { payments: { charged: 70, refunded: 0 }, shipping: { created: 1, cancelled: 0 } },
  });
  assert.ok(validator(Audit, 'audit').check(audit));
});

test('extra fields in a service reply stay out of the audit', () => {
  const audit = assembleAudit({
    inventory: { skus: { a: { initial: 1, available: 1, reserved: 0, sold: 0, soldK8s: 0, extra: 9 } as never } },
    payments: { order: { charged: 0, refunded: 0, extra: 1 } as never, k8s: { charged: 0, refunded: 0 } },
    shipping: { order: { created: 0, cancelled: 0 }, k8s: { created: 0, cancelled: 0 } },
    orders: { confirmed: { count: 0, total: 0 }, cancelled: { count: 0 }, pending: { count: 0 }, failed: { count: 0 }, extra: 1 } as never,
  });
  assert.equal(JSON.stringify(audit).includes('extra'), false);
});
