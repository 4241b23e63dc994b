import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { StepErrorCodes, type RunOrigin } from '@sagamesh/contracts';
import {
  BooksCorruptError,
  initialStock,
  mergeItems,
  onRelease,
  planRound,
  type Change,
  releaseStocks,
  reserveDecision,
  sellStocks,
  storedReserveResult,
  toSell,
  type Reservation,
  type SkuStock,
} from '../src/domain.ts';

const SKUS = ['a', 'b', 'c'];

const booksHold = (s: SkuStock) =>
  s.available + s.reserved + s.sold + s.soldK8s === s.initial && [s.available, s.reserved, s.sold, s.soldK8s].every((n) => n >= 0);

const arbItems = fc.array(fc.record({ sku: fc.constantFrom(...SKUS), quantity: fc.integer({ min: 1, max: 8 }) }), { minLength: 1, maxLength: 4 });
const arbStocks = fc
  .tuple(...SKUS.map(() => fc.integer({ min: 0, max: 20 })))
  .map((initials) => new Map(SKUS.map((sku, i) => [sku, initialStock(initials[i]!)])));

test('mergeItems sums repeated skus and sorts by sku', () => {
  assert.deepEqual(
    mergeItems([
      { sku: 'b', quantity: 1 },
      { sku: 'a', quantity: 2 },
      { sku: 'b', quantity: 3 },
    ]),
    [
      { sku: 'a', quantity: 2 },
      { sku: 'b', quantity: 4 },
    ],
  );
});

test('reserveDecision refuses the short sku by name and an unknown sku', () => {
  const stocks = new Map([
    ['a', initialStock(5)],
    ['b', initialStock(1)],
  ]);
  const short = reserveDecision(stocks, [
    { sku: 'a', quantity: 1 },
    { sku: 'b', quantity: 1 },
    { sku: 'b', quantity: 1 },
  ]);
  assert.equal(short.ok, false);
  assert.equal(!short.ok && short.error.code, StepErrorCodes.outOfStock);
  assert.match(!short.ok ? short.error.message : '', /sku b: 2 requested, 1 available/);
  const unknown = reserveDecision(stocks, [{ sku: 'zz', quantity: 1 }]);
  assert.equal(!unknown.ok && unknown.error.code, StepErrorCodes.unknownSku);
});

test('property: a reservation is all or none and never makes available negative', () => {
  fc.assert(
    fc.property(arbStocks, arbItems, (stocks, items) => {
      const d = reserveDecision(stocks, items);
      const want = mergeItems(items);
      const fits = want.every((i) => stocks.get(i.sku)!.available >= i.quantity);
      assert.equal(d.ok, fits);
      if (!d.ok) return;
      assert.deepEqual([...d.stocks.keys()].sort(), want.map((i) => i.sku));
      for (const { sku, quantity } of want) {
        const s: SkuStock = d.stocks.get(sku)!;
        assert.ok(s.available >= 0 && booksHold(s));
        assert.equal(stocks.get(sku)!.available - s.available, quantity);
        assert.equal(s.reserved - stocks.get(sku)!.reserved, quantity);
      }
    }),
  );
});

test('property: reserve then release restores the counters exactly', () => {
  fc.assert(
    fc.property(arbStocks, arbItems, (stocks, items) => {
      const d = reserveDecision(stocks, items);
      fc.pre(d.ok);
      if (!d.ok) return;
      const after = new Map(stocks);
      for (const [sku, s] of d.stocks) after.set(sku, s);
      const released = releaseStocks(after, items);
      for (const [sku, s] of released) assert.deepEqual(s, stocks.get(sku));
    }),
  );
});

const arbOps = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('reserve' as const), id: fc.integer({ min: 0, max: 5 }), items: arbItems, origin: fc.constantFrom<RunOrigin>('order', 'k8s') }),
    fc.record({ kind: fc.constant('release' as const), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('sell' as const), id: fc.integer({ min: 0, max: 5 }) }),
  ),
  { maxLength: 40 },
);

test('property: any order of reserves, releases and sales (duplicates included) keeps available + reserved + sold + soldK8s = initial, none negative', () => {
  fc.assert(
    fc.property(arbStocks, arbOps, (initial, ops) => {
      // The same decisions the service makes, on an in-memory bucket.
      let stocks = new Map(initial);
      const records = new Map<number, Reservation>();
      const apply = (changed: Map<string, SkuStock>) => {
        stocks = new Map([...stocks, ...changed]);
      };
      for (const op of ops) {
        const rec = records.get(op.id);
        if (op.kind === 'reserve') {
          if (rec) {
            storedReserveResult(rec); // a repeat changes nothing
            continue;
          }
          const items = mergeItems(op.items);
          const d = reserveDecision(stocks, items);
          if (d.ok) apply(d.stocks);
          records.set(op.id, { origin: op.origin, items, status: d.ok ? 'reserved' : 'failed', action: d.ok ? { outcome: 'succeeded' } : { outcome: 'failed', error: d.error } });
        } else if (op.kind === 'release') {
          const step = onRelease(rec);
          if (step.kind === 'tombstone') records.set(op.id, { origin: 'order', items: [], status: 'tombstone', compensation: step.result });
          if (step.kind === 'release') {
            apply(releaseStocks(stocks, rec!.items));
            records.set(op.id, { ...rec!, status: 'released', compensation: step.result });
          }
        } else if (toSell(rec)) {
          apply(sellStocks(stocks, rec.items, rec.origin));
          records.set(op.id, { ...rec, status: 'sold' });
        }
        for (const s of stocks.values()) assert.ok(booksHold(s), JSON.stringify(s));
      }
      // reserved is exactly what the reserved records hold
      for (const sku of SKUS) {
        const held = [...records.values()].filter((r) => r.status === 'reserved').flatMap((r) => r.items).filter((i) => i.sku === sku).reduce((n, i) => n + i.quantity, 0);
        assert.equal(stocks.get(sku)!.reserved, held);
      }
    }),
  );
});

test('a release before its reserve leaves a tombstone that refuses the late reserve', () => {
  const step = onRelease(undefined);
  assert.equal(step.kind, 'tombstone');
  const tomb: Reservation = { origin: 'order', items: [], status: 'tombstone', compensation: step.result };
  assert.equal(storedReserveResult(tomb).error?.code, StepErrorCodes.compensatedBeforeAction);
  assert.equal(onRelease(tomb).kind, 'replay');
});

test('a release of a sold reservation is refused; of a failed one, a no-op', () => {
  const sold: Reservation = { origin: 'order', items: [{ sku: 'a', quantity: 1 }], status: 'sold', action: { outcome: 'succeeded' } };
  const r = onRelease(sold);
  assert.equal(r.kind, 'refuse');
  assert.equal(r.result.error?.code, StepErrorCodes.alreadySold);
  const failed: Reservation = { origin: 'order', items: [{ sku: 'a', quantity: 1 }], status: 'failed', action: { outcome: 'failed' } };
  assert.deepEqual(onRelease(failed), { kind: 'noop', result: { outcome: 'succeeded', output: { released: [] } } });
});

test('moving stock that is not reserved is reported as corrupt books, never written', () => {
  assert.throws(() => releaseStocks(new Map([['a', initialStock(3)]]), [{ sku: 'a', quantity: 1 }]), BooksCorruptError);
  assert.throws(() => sellStocks(new Map(), [{ sku: 'a', quantity: 1 }], 'k8s'), BooksCorruptError);
});

test('a sale counts per origin', () => {
  const reserved = new Map([['a', { initial: 5, available: 3, reserved: 2, sold: 0, soldK8s: 0 }]]);
  assert.deepEqual(sellStocks(reserved, [{ sku: 'a', quantity: 2 }], 'order').get('a'), { initial: 5, available: 3, reserved: 0, sold: 2, soldK8s: 0 });
  assert.deepEqual(sellStocks(reserved, [{ sku: 'a', quantity: 2 }], 'k8s').get('a'), { initial: 5, available: 3, reserved: 0, sold: 0, soldK8s: 2 });
});

test('a round applies its changes one after the other: the first reserves of a scarce sku win, the rest are refused', () => {
  const changes: Change[] = Array.from({ length: 5 }, (_, i) => ({ kind: 'reserve', key: `r${i}.s`, origin: 'order', items: [{ sku: 'a', quantity: 1 }] }));
  const { planned, stocks } = planRound(new Map([['a', initialStock(3)]]), changes);
  assert.deepEqual(planned.map((p) => p.ok && p.record.status), ['reserved', 'reserved', 'reserved', 'failed', 'failed']);
  assert.deepEqual(planned.slice(3).map((p) => p.ok && p.result?.outcome === 'failed' && p.result.error?.code), [StepErrorCodes.outOfStock, StepErrorCodes.outOfStock]);
  assert.deepEqual(stocks.get('a'), { initial: 3, available: 0, reserved: 3, sold: 0, soldK8s: 0 });
});

test('a round with a move that cannot apply reports it and plans the others', () => {
  const bogus: Reservation = { origin: 'order', items: [{ sku: 'a', quantity: 9 }], status: 'reserved', action: { outcome: 'succeeded' } };
  const { planned, stocks } = planRound(new Map([['a', initialStock(5)]]), [
    { kind: 'release', key: 'x.s', record: bogus, expect: 7, result: { outcome: 'succeeded' } },
    { kind: 'reserve', key: 'y.s', origin: 'k8s', items: [{ sku: 'a', quantity: 2 }] },
  ]);
  assert.equal(planned[0]!.ok, false);
  const second = planned[1]!;
  assert.ok(second.ok && second.record.status === 'reserved');
  assert.equal(stocks.get('a')!.available, 3);
});

test('property: a round of reserves, releases and sales keeps every sku balanced and writes each record at the revision it was decided on', () => {
  fc.assert(
    fc.property(arbStocks, fc.array(arbItems, { maxLength: 12 }), (initial, orders) => {
      const reserves: Change[] = orders.map((items, i) => ({ kind: 'reserve', key: `r${i}.s`, origin: i % 2 ? 'order' : 'k8s', items }));
      const first = planRound(initial, reserves);
      const after1 = new Map([...initial, ...first.stocks]);
      for (const s of after1.values()) assert.ok(booksHold(s));
      // release the odd ones, sell the even ones, all in one round
      const second: Change[] = first.planned.flatMap((p, i): Change[] => {
        if (!p.ok || p.record.status !== 'reserved') return [];
        return i % 2
          ? [{ kind: 'release', key: `r${i}.s`, record: p.record, expect: 10 + i, result: { outcome: 'succeeded' } }]
          : [{ kind: 'sell', key: `r${i}.s`, record: p.record, expect: 10 + i }];
      });
      const round2 = planRound(after1, second);
      assert.ok(round2.planned.every((p, i) => p.ok && p.expect === (second[i] as { expect: number }).expect));
      const after2 = new Map([...after1, ...round2.stocks]);
      for (const [sku, s] of after2) {
        assert.ok(booksHold(s));
        assert.equal(s.reserved, 0, `nothing left reserved on ${sku}`);
      }
    }),
  );
});
