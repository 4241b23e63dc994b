import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  SagaDefinitionSpec, orderFulfillmentDefinition, validator, ValidationError, definitionRevision,
  parseDuration, effectiveFault, faultFires, commandMsgId, stepKey, isValidId, ceType, parseCeType,
} from '../src/index.ts';

test('the built-in definition is valid against its own schema', () => {
  assert.doesNotThrow(() => validator(SagaDefinitionSpec, 'saga definition').parse(orderFulfillmentDefinition));
});

test('validation errors name the path', () => {
  const v = validator(SagaDefinitionSpec, 'saga definition');
  assert.throws(() => v.parse({ steps: [{ name: 'a b', action: { service: 'x', command: 'y' } }] }), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.match(e.message, /\/steps\/0\/name/);
    return true;
  });
});

test('revision ignores key order and changes with content', () => {
  assert.equal(definitionRevision({ a: 1, b: [1, { c: 2, d: 3 }] }), definitionRevision({ b: [1, { d: 3, c: 2 }], a: 1 }));
  assert.notEqual(definitionRevision({ a: 1 }), definitionRevision({ a: 2 }));
});

test('durations parse and bad ones are refused', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.throws(() => parseDuration('5 s'), /invalid duration/);
  fc.assert(fc.property(fc.nat(100_000), (n) => parseDuration(`${n}ms`) === n && parseDuration(`${n}s`) === n * 1000));
});

test('per-run faults override global ones; rate 1 always fires, 0 never', () => {
  const g = [{ target: 'payments.charge', failureRate: 0, latencyMs: 0, crashAfterCommit: false }];
  const r = [{ target: 'payments.charge', failureRate: 1, latencyMs: 0, crashAfterCommit: false }];
  assert.equal(effectiveFault('payments.charge', r, g)?.failureRate, 1);
  assert.equal(effectiveFault('payments.charge', undefined, g)?.failureRate, 0);
  fc.assert(fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (x) => faultFires(r[0], x) && !faultFires(g[0], x)));
});

test('keys and message ids follow the contract', () => {
  assert.equal(stepKey('o-1', 'charge-payment', 'do'), 'o-1.charge-payment');
  assert.equal(stepKey('o-1', 'charge-payment', 'compensate'), 'o-1.charge-payment.compensate');
  assert.equal(commandMsgId('o-1', 'charge-payment', 'do', 2), 'o-1.charge-payment.2');
  assert.ok(isValidId('o-1_A'));
  assert.ok(!isValidId('o.1') && !isValidId('o:1') && !isValidId(''));
  assert.deepEqual(parseCeType(ceType('saga', 'step_started')), { area: 'saga', name: 'step_started', version: 1 });
  assert.equal(parseCeType('other.x.v1'), undefined);
});
