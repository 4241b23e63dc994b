import assert from 'node:assert/strict';
import { test } from 'node:test';
import { booksPerOrigin, perOrigin, type Books } from '@sagamesh/runtime';

test('per-origin books: contributions keyed by origin add up apart, and read back with every counter', () => {
  const totals: Books = {};
  for (const contribution of [perOrigin('order', { charged: 5, refunded: 0 }), perOrigin('order', { charged: 2, refunded: 2 }), perOrigin('k8s', { charged: 1 })]) {
    for (const [k, n] of Object.entries(contribution)) totals[k] = (totals[k] ?? 0) + n;
  }
  assert.deepEqual(totals, { 'order.charged': 7, 'order.refunded': 2, 'k8s.charged': 1 });
  assert.deepEqual(booksPerOrigin(totals, ['charged', 'refunded']), { order: { charged: 7, refunded: 2 }, k8s: { charged: 1, refunded: 0 } });
  assert.deepEqual(booksPerOrigin({}, ['created']), { order: { created: 0 }, k8s: { created: 0 } });
});
