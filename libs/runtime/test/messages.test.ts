import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { CeHeaders, ceType, validator } from '@sagamesh/contracts';
import { buildHeaders, decodeMessage, headers, PoisonMessageError } from '@sagamesh/runtime';

const Reserve = validator(Type.Object({ sku: Type.String(), quantity: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), 'reserve command');
const TYPE = ceType('inventory', 'reserve');
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

function message(data: unknown, type = TYPE) {
  return { headers: buildHeaders({ type, source: 'test', data, correlationId: 'run-1', causationId: 'cause-1', id: 'id-1' }), data: enc(data) };
}

function poison(fn: () => unknown): PoisonMessageError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PoisonMessageError, `expected PoisonMessageError, got ${String(err)}`);
    return err;
  }
  assert.fail('did not throw');
}

test('a good message decodes into its envelope', () => {
  const env = decodeMessage(message({ sku: 'sku-1', quantity: 2 }), Reserve, [TYPE]);
  assert.equal(env.id, 'id-1');
  assert.equal(env.type, 'sagamesh.inventory.reserve.v1');
  assert.equal(env.source, 'test');
  assert.equal(env.correlationId, 'run-1');
  assert.equal(env.causationId, 'cause-1');
  assert.ok(!Number.isNaN(Date.parse(env.time)));
  assert.deepEqual(env.data, { sku: 'sku-1', quantity: 2 });
});

test('bad JSON is poison with a reason', () => {
  const m = message({ sku: 'sku-1', quantity: 2 });
  const err = poison(() => decodeMessage({ headers: m.headers, data: enc('{"sku": ') }, Reserve));
  assert.match(err.reason, /^bad JSON in sagamesh\.inventory\.reserve\.v1 data: /);
});

test('a schema failure is poison naming the field', () => {
  const err = poison(() => decodeMessage(message({ sku: 'sku-1', quantity: 0 }), Reserve));
  assert.match(err.reason, /^schema check failed for sagamesh\.inventory\.reserve\.v1: invalid reserve command: \/quantity: /);
});

test('an unknown version of an expected type is poison naming the version', () => {
  const err = poison(() => decodeMessage(message({ sku: 'sku-1', quantity: 1 }, ceType('inventory', 'reserve', 2)), Reserve, [TYPE]));
  assert.equal(err.reason, 'unsupported version v2 of ce-type "sagamesh.inventory.reserve.v2": this consumer handles sagamesh.inventory.reserve.v1');
});

test('an unexpected or non-sagamesh type is poison', () => {
  assert.match(poison(() => decodeMessage(message({}, ceType('payments', 'charge')), Reserve, [TYPE])).reason, /^unexpected ce-type "sagamesh\.payments\.charge\.v1"/);
  assert.match(poison(() => decodeMessage(message({}, 'com.example.thing'), Reserve)).reason, /^unknown ce-type "com\.example\.thing"/);
});

test('missing CloudEvents headers are poison listing them', () => {
  const h = headers();
  h.set(CeHeaders.type, TYPE);
  assert.equal(
    poison(() => decodeMessage({ headers: h, data: enc({}) }, Reserve)).reason,
    'missing CloudEvents header(s): ce-id, ce-source, ce-specversion, ce-time, ce-correlationid',
  );
  assert.match(poison(() => decodeMessage({ data: enc({}) }, Reserve)).reason, /^no headers/);
});
