import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { CeHeaders, ceType, validator } from '@sagamesh/contracts';
import { buildHeaders, decodeMessage, getHeader, headers, PoisonMessageError, setHeader } from '@sagamesh/runtime';
import { MsgHdrsImpl } from '@nats-io/nats-core';

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

test('setHeader and getHeader do what MsgHdrs set and get do: same bytes on the wire, same reads, line breaks refused', () => {
  const slow = new MsgHdrsImpl();
  const fast = new MsgHdrsImpl();
  for (const [k, v] of [[CeHeaders.id, 'a'], [CeHeaders.type, ' t '], ['Nats-Msg-Id', 'm'], [CeHeaders.id, 'b']] as const) {
    slow.set(k, v);
    setHeader(fast, k, v);
  }
  assert.deepEqual(fast.encode(), slow.encode());
  const received = MsgHdrsImpl.decode(slow.encode());
  for (const k of [CeHeaders.id, CeHeaders.type, 'Nats-Msg-Id', 'nats-msg-id', CeHeaders.traceparent]) assert.equal(getHeader(received, k), received.get(k), k);
  assert.equal(getHeader(received, CeHeaders.id), 'b');
  assert.throws(() => setHeader(fast, CeHeaders.causationId, 'x\r\nce-type: forged'), /cannot contain/);
  // Another MsgHdrs implementation goes through its own set and get.
  const calls: string[] = [];
  const other = { set: (k: string, v: string) => void calls.push(`${k}=${v}`), get: (k: string) => (calls.push(k), 'v') } as unknown as ReturnType<typeof headers>;
  setHeader(other, 'k', 'v');
  assert.equal(getHeader(other, 'k'), 'v');
  assert.deepEqual(calls, ['k=v', 'k']);
});
