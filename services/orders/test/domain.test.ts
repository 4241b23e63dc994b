import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Catalogue } from '@sagamesh/contracts';
import { decide, evolve, isTerminal, priceOrder, replay, type OrderCommand, type OrderState, type RecordedEvent } from '../src/domain.ts';
import { orderBooksOf, contribution, emptyBooks, planProjection, recordBooks, type ViewRecord } from '../src/projection.ts';
import { addBooks } from './helpers.ts';

const orderId = 'ord-1';
const lines = [
  [{ sku: 'sku-1', quantity: 2, unitPrice: 8999 }],
  [{ sku: 'sku-rare', quantity: 1, unitPrice: 49900 }],
];
const commandArb: fc.Arbitrary<OrderCommand> = fc.oneof(
  fc.constantFrom(0, 1).map((i): OrderCommand => ({ kind: 'place', orderId, customerId: `c-${i}`, items: lines[i]!, total: lines[i]!.reduce((s, l) => s + l.quantity * l.unitPrice, 0) })),
  fc.constant<OrderCommand>({ kind: 'confirm', orderId }),
  fc.string({ maxLength: 8 }).map((reason): OrderCommand => ({ kind: 'cancel', orderId, reason })),
  fc.string({ maxLength: 8 }).map((reason): OrderCommand => ({ kind: 'fail', orderId, reason })),
);

/** Runs commands through decide/evolve like the event store does; returns the log and each state. */
function run(commands: readonly OrderCommand[]): { log: RecordedEvent[]; states: OrderState[] } {
  let state: OrderState;
  const log: RecordedEvent[] = [];
  const states: OrderState[] = [];
  for (const cmd of commands) {
    const d = decide(state, cmd);
    if (d.ok) {
      for (const event of d.events) {
        const rec = { event, seq: log.length + 1, at: new Date(Date.UTC(2025, 0, 1, 0, 0, log.length)).toISOString() };
        log.push(rec);
        state = evolve(state, rec);
      }
    }
    states.push(state);
  }
  return { log, states };
}

test('any sequence of commands leaves at most one placed and one terminal event, placed first', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 30 }), (commands) => {
      const { log } = run(commands);
      const names = log.map((r) => r.event.name);
      assert.ok(names.filter((n) => n === 'placed').length <= 1);
      assert.ok(names.filter((n) => n !== 'placed').length <= 1);
      if (names.length > 0) assert.equal(names[0], 'placed');
    }),
  );
});

test('a terminal order never changes, and replaying the log gives the same state', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 30 }), (commands) => {
      const { log, states } = run(commands);
      const firstTerminal = states.findIndex(isTerminal);
      if (firstTerminal >= 0) for (const s of states.slice(firstTerminal)) assert.deepEqual(s, states[firstTerminal]);
      assert.deepEqual(replay(log), states.at(-1));
    }),
  );
});

test('placing the same order twice is a no-op; different content under the same id is refused', () => {
  const place = { kind: 'place', orderId, customerId: 'c-1', items: lines[0]!, total: 17998 } as const;
  const { log } = run([place]);
  const state = replay(log);
  assert.deepEqual(decide(state, place), { ok: true, events: [] });
  const other = decide(state, { ...place, customerId: 'c-2' });
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.rejection.code, 'order_exists');
});

test('the owner is part of the order: kept by every event after placed, and another owner under the same id is refused', () => {
  const place = { kind: 'place', orderId, customerId: 'c-1', items: lines[0]!, total: 17998, owner: 'scope-a' } as const;
  const { log } = run([place, { kind: 'confirm', orderId }]);
  assert.equal(log[0]!.event.data.orderId, orderId);
  assert.equal((log[0]!.event.data as { owner?: string }).owner, 'scope-a');
  assert.equal(replay(log)?.owner, 'scope-a');
  assert.equal(replay(log)?.status, 'CONFIRMED');
  const state = replay(log);
  assert.deepEqual(decide(state, place), { ok: true, events: [] });
  for (const other of [{ ...place, owner: 'scope-b' }, { ...place, owner: undefined }]) {
    const d = decide(state, other);
    assert.equal(!d.ok && d.rejection.code, 'order_exists');
  }
  // A placed event from before owners were recorded: no owner, and no `owner` key in the view.
  const { log: old } = run([{ kind: 'place', orderId, customerId: 'c-1', items: lines[0]!, total: 17998 }]);
  assert.ok(!('owner' in old[0]!.event.data));
  assert.ok(!('owner' in replay(old)!));
});

test('end commands on an unknown order are refused; reasons are kept', () => {
  const d = decide(undefined, { kind: 'confirm', orderId });
  assert.equal(!d.ok && d.rejection.code, 'not_found');
  const { log } = run([{ kind: 'place', orderId, customerId: 'c', items: lines[0]!, total: 17998 }, { kind: 'cancel', orderId, reason: 'out of stock' }]);
  assert.equal(replay(log)?.status, 'CANCELLED');
  assert.equal(replay(log)?.reason, 'out of stock');
});

test('pricing comes from the catalogue and unknown skus are named', () => {
  const priced = priceOrder({ customerId: 'c', items: [{ sku: 'sku-1', quantity: 2 }, { sku: 'sku-3', quantity: 1 }] }, Catalogue);
  assert.deepEqual(priced, { ok: true, total: 2 * 8999 + 2499, items: [{ sku: 'sku-1', quantity: 2, unitPrice: 8999 }, { sku: 'sku-3', quantity: 1, unitPrice: 2499 }] });
  assert.deepEqual(priceOrder({ customerId: 'c', items: [{ sku: 'nope', quantity: 1 }, { sku: 'nope', quantity: 2 }] }, Catalogue), { ok: false, unknownSkus: ['nope'] });
});

test('projection: any delivery order with redeliveries converges to the replayed view, counted once in the books', () => {
  fc.assert(
    fc.property(
      fc.array(commandArb, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (commands, picks) => {
        const { log } = run(commands);
        // Deliveries: every event at least once, plus duplicates, in an arbitrary order.
        const queue = [...log, ...picks.filter(() => log.length > 0).map((p) => log[p % log.length]!)];
        for (let i = 0; i < picks.length && queue.length > 1; i++) {
          const j = picks[i]! % queue.length;
          [queue[0], queue[j]] = [queue[j]!, queue[0]!];
        }
        let record: ViewRecord | undefined;
        for (let guard = 0; queue.length > 0; guard++) {
          assert.ok(guard < 1000, 'projection does not converge');
          const rec = queue.shift()!;
          const step = planProjection(record, rec);
          if (step.kind === 'wait') queue.push(rec);
          else if (step.kind === 'apply') record = step.next;
        }
        assert.deepEqual(record?.view, replay(log));
        assert.equal(record?.seq, log.at(-1)?.seq, 'the record remembers the last sequence folded in');
        // The books are the sum over the records' tallies: one order counts once, in its final state.
        const books = record ? orderBooksOf(recordBooks(record)) : emptyBooks();
        assert.deepEqual(books, addBooks(emptyBooks(), contribution(replay(log))));
      },
    ),
  );
});
