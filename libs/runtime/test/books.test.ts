import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applyDelta, booksPerOrigin, type Contribution, perOrigin, Tally, type Books } from '@sagamesh/runtime';

test('per-origin books: contributions keyed by origin add up apart, and read back with every counter', () => {
  const totals: Books = {};
  for (const contribution of [perOrigin('order', { charged: 5, refunded: 0 }), perOrigin('order', { charged: 2, refunded: 2 }), perOrigin('k8s', { charged: 1 })]) {
    for (const [k, n] of Object.entries(contribution)) totals[k] = (totals[k] ?? 0) + n;
  }
  assert.deepEqual(totals, { 'order.charged': 7, 'order.refunded': 2, 'k8s.charged': 1 });
  assert.deepEqual(booksPerOrigin(totals, ['charged', 'refunded']), { order: { charged: 7, refunded: 2 }, k8s: { charged: 1, refunded: 0 } });
  assert.deepEqual(booksPerOrigin({}, ['created']), { order: { created: 0 }, k8s: { created: 0 } });
});

const counters = ['a', 'b', 'c'];
const arbBooks: fc.Arbitrary<Books> = fc.dictionary(fc.constantFrom(...counters), fc.integer({ min: -1000, max: 1000 }), { maxKeys: 3 });
/** One key's records in the order they are written: any number not settled, then perhaps a settled one or a delete. */
const arbHistory = fc.tuple(fc.array(arbBooks, { maxLength: 4 }), fc.option(fc.oneof(fc.record({ settled: arbBooks }), fc.constant('delete' as const)), { nil: undefined })).map(([open, end]) => {
  const writes: (Contribution | 'delete')[] = open.map((books) => ({ books, settled: false }));
  if (end === 'delete') writes.push('delete');
  else if (end) writes.push({ books: end.settled, settled: true });
  return writes;
});

test('property: the tally holds the sum of each key\'s latest record, remembering only records not settled, whichever earlier records it misses', () => {
  fc.assert(
    fc.property(fc.array(arbHistory, { minLength: 1, maxLength: 12 }), fc.array(fc.nat()), fc.array(fc.boolean()), (histories, order, drops) => {
      // The bucket's order: each key's records in order, keys interleaved; a delivery may miss any record but a key's latest.
      const cursors = histories.map(() => 0);
      const tally = new Tally<number>();
      let pick = 0;
      let drop = 0;
      for (let left = histories.reduce((n, h) => n + h.length, 0); left > 0; left--) {
        const open = histories.flatMap((h, k) => (cursors[k]! < h.length ? [k] : []));
        const k = open[(order[pick++] ?? 0) % open.length]!;
        const at = cursors[k]!++;
        const write = histories[k]![at]!;
        const latest = at === histories[k]!.length - 1;
        if (!latest && (drops[drop++] ?? false)) continue;
        if (write === 'delete') tally.delete(`k${k}`);
        else tally.put(`k${k}`, at, write);
      }
      const expected: Books = {};
      for (const h of histories) {
        const last = h.at(-1);
        if (last && last !== 'delete') applyDelta(expected, last.books);
      }
      for (const c of counters) assert.equal(tally.totals[c] ?? 0, expected[c] ?? 0, c);
      const open = histories.filter((h) => { const last = h.at(-1); return last !== undefined && last !== 'delete' && !last.settled; });
      assert.equal(tally.remembered, open.length, 'it remembers exactly the keys whose latest record is not settled');
    }),
  );
});

test('applyDelta: adding and taking back the same books leaves every total as it was', () => {
  fc.assert(
    fc.property(arbBooks, arbBooks, (start, delta) => {
      const totals = applyDelta(applyDelta({ ...start }, delta), {}, delta);
      for (const c of counters) assert.equal(totals[c] ?? 0, start[c] ?? 0);
    }),
  );
});
