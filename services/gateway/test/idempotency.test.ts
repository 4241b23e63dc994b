import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IDEMPOTENCY_KEY_PATTERN, isValidId } from '@sagamesh/contracts';
import { bodyHashOf, decide, kvKeyOf, orderIdFor, type IdempotencyRecord } from '../src/idempotency.ts';
import { keyScope } from '../src/auth.ts';

const idemKey = fc.stringMatching(new RegExp(IDEMPOTENCY_KEY_PATTERN));
const scope = fc.string({ minLength: 16 }).map(keyScope);

test('derived order ids are valid ids, shaped like orders\' own, and the same for the same (api key, idempotency key)', () => {
  fc.assert(
    fc.property(scope, idemKey, (s, k) => {
      const id = orderIdFor(s, k);
      assert.ok(isValidId(id));
      assert.match(id, /^ord-[A-Za-z0-9_-]{22}$/);
      assert.equal(orderIdFor(s, k), id);
    }),
  );
});

test('different API keys or idempotency keys give different order ids', () => {
  fc.assert(
    fc.property(scope, scope, idemKey, idemKey, (s1, s2, k1, k2) => {
      fc.pre(s1 !== s2 || k1 !== k2);
      assert.notEqual(orderIdFor(s1, k1), orderIdFor(s2, k2));
    }),
  );
});

test('KV keys are valid NATS KV keys and scoped by the API key hash', () => {
  fc.assert(
    fc.property(scope, idemKey, (s, k) => {
      const key = kvKeyOf(s, k);
      assert.match(key, /^[-_.A-Za-z0-9]+$/);
      assert.ok(key.startsWith(`${s}.`));
    }),
  );
});

test('the body hash ignores key order and spacing but not content', () => {
  const a = { customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 2 }] };
  const b = JSON.parse('{ "items": [ { "quantity": 2, "sku": "sku-1" } ], "customerId": "c-1" }');
  assert.equal(bodyHashOf(a), bodyHashOf(b));
  assert.notEqual(bodyHashOf(a), bodyHashOf({ ...a, items: [{ sku: 'sku-1', quantity: 3 }] }));
  assert.notEqual(bodyHashOf(a), bodyHashOf({ ...a, items: [...a.items, { sku: 'sku-2', quantity: 1 }] }));
});

const record = (over: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
  state: 'pending',
  bodyHash: 'h1',
  orderId: 'o-1',
  startedAt: 1000,
  ...over,
});

test('decide: another body is a mismatch, whatever the state', () => {
  assert.deepEqual(decide(record(), 'h2', 1001, 5000), { kind: 'mismatch' });
  assert.deepEqual(decide(record({ state: 'done', response: { status: 202, body: {} } }), 'h2', 1001, 5000), { kind: 'mismatch' });
});

test('decide: a done record replays its response', () => {
  const response = { status: 202, body: { orderId: 'o-1', status: 'PENDING' }, location: '/api/orders/o-1' };
  assert.deepEqual(decide(record({ state: 'done', response }), 'h1', 99_999_999, 5000), { kind: 'replay', response });
});

test('decide: a pending record is waited for until it is stale, then taken over', () => {
  assert.deepEqual(decide(record(), 'h1', 1001, 5000), { kind: 'wait', untilMs: 6000 });
  assert.deepEqual(decide(record(), 'h1', 5999, 5000), { kind: 'wait', untilMs: 6000 });
  assert.deepEqual(decide(record(), 'h1', 6000, 5000), { kind: 'takeover' });
});

test('decide: an unreadable record is taken over', () => {
  assert.deepEqual(decide(undefined, 'h1', 0, 5000), { kind: 'takeover' });
});
