import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelayMs, bodyParserError, isChainBroken, isJetStreamUnavailable, isWrongLastSequence, JetStreamErrorCodes, MAX_AMOUNT_CENTS, MAX_RUN_INPUT_BYTES, runInputProblem, SagaInput, traceIdOf, validator } from '@sagamesh/contracts';

describe('backoffDelayMs', () => {
  it('starts at initial, grows by the multiplier (default 2), and stops at the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs({ initialMs: 100, maxMs: 1000 }, n)), [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelayMs({ initialMs: 100, maxMs: 10_000, multiplier: 3 }, n)), [100, 300, 900]);
  });
  it('never exceeds the cap and never shrinks from one retry to the next', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 60 }), (initialMs, maxMs, n) => {
        const b = { initialMs, maxMs };
        assert.ok(backoffDelayMs(b, n) <= Math.max(maxMs, 0));
        assert.ok(backoffDelayMs(b, n + 1) >= backoffDelayMs(b, n));
      }),
    );
  });
});

describe('traceIdOf', () => {
  it('reads the trace id of a valid traceparent, nothing from an invalid or all-zero one', () => {
    assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), undefined);
    assert.equal(traceIdOf('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), undefined);
    assert.equal(traceIdOf('garbage'), undefined);
    assert.equal(traceIdOf(undefined), undefined);
  });
});

describe('JetStream error classification', () => {
  const apiError = (code: number) => Object.assign(new Error(`api error ${code}`), { code });
  it('finds a wrong-last-sequence code anywhere in the cause chain', () => {
    assert.ok(isWrongLastSequence(apiError(JetStreamErrorCodes.wrongLastSequence)));
    assert.ok(isWrongLastSequence(apiError(JetStreamErrorCodes.wrongLastSequenceUnknown)));
    assert.ok(isWrongLastSequence(new Error('write failed', { cause: new Error('publish', { cause: apiError(10071) }) })));
    assert.ok(!isWrongLastSequence(apiError(JetStreamErrorCodes.wrongLastMsgId)), 'a wrong last msg id is not a lost compare-and-set');
    assert.ok(!isWrongLastSequence(apiError(10077)));
    assert.ok(!isWrongLastSequence(Object.assign(new Error('string code'), { code: '10071' })));
    assert.ok(!isWrongLastSequence(undefined));
  });
  it('a broken chain is any of the three', () => {
    const { wrongLastMsgId, wrongLastSequence, wrongLastSequenceUnknown } = JetStreamErrorCodes;
    for (const code of [wrongLastMsgId, wrongLastSequence, wrongLastSequenceUnknown]) assert.ok(isChainBroken(apiError(code)));
    assert.ok(!isChainBroken(apiError(10058)));
    assert.ok(!isChainBroken(apiError(JetStreamErrorCodes.temporarilyUnavailable)));
  });
  it('JetStream unavailable for now: timeouts, no responders, not enabled yet, 10008, 10005, stream/consumer offline, anywhere in the chain; nothing else', () => {
    // The names nats.js gives these errors (libs/runtime's publisher test checks them against a real server).
    const named = (name: string) => Object.assign(new Error(name), { name });
    for (const e of [named('TimeoutError'), named('NoResponders'), named('JetStreamNotEnabled'), apiError(10008), apiError(10005), apiError(10118), apiError(10119)]) {
      assert.ok(isJetStreamUnavailable(e), e.message);
      assert.ok(isJetStreamUnavailable(new Error('could not create bucket', { cause: new Error('request', { cause: e }) })), `${e.message} as a cause`);
    }
    for (const e of [apiError(10074), apiError(10058), apiError(JetStreamErrorCodes.wrongLastSequence), named('PermissionViolationError'), new Error('timeout'), undefined]) {
      assert.ok(!isJetStreamUnavailable(e), String(e));
    }
  });
});

describe('bodyParserError', () => {
  it('maps body-parser failures to the public codes every service answers with', () => {
    assert.deepEqual(bodyParserError({ type: 'entity.parse.failed', message: 'Unexpected token' }), { status: 400, code: 'invalid_request', message: '/: malformed JSON (Unexpected token)' });
    assert.deepEqual(bodyParserError({ type: 'entity.too.large', limit: 16384 }), { status: 413, code: 'payload_too_large', message: 'body exceeds 16384 bytes' });
    assert.equal(bodyParserError({ type: 'charset.unsupported', message: 'x' })?.status, 415);
    assert.equal(bodyParserError({ type: 'request.aborted' })?.code, 'request_aborted');
    assert.equal(bodyParserError({ type: 'something.else' }), undefined);
    assert.equal(bodyParserError({}), undefined);
  });
});

describe('bounds on a run', () => {
  it('an input up to MAX_RUN_INPUT_BYTES of JSON is accepted, one byte more is refused with the sizes', () => {
    const sized = (n: number) => ({ b: 'x'.repeat(n - JSON.stringify({ b: '' }).length) });
    assert.equal(runInputProblem(sized(MAX_RUN_INPUT_BYTES)), undefined);
    assert.match(runInputProblem(sized(MAX_RUN_INPUT_BYTES + 1))!, new RegExp(`input is ${MAX_RUN_INPUT_BYTES + 1} bytes of JSON; at most ${MAX_RUN_INPUT_BYTES}`));
    assert.equal(runInputProblem(undefined), undefined);
  });
  it('amounts are integer cents up to MAX_AMOUNT_CENTS', () => {
    const v = validator(SagaInput, 'saga input');
    const input = (amountCents: number) => ({ customerId: 'c', items: [{ sku: 's', quantity: 1 }], amountCents });
    assert.doesNotThrow(() => v.parse(input(MAX_AMOUNT_CENTS)));
    assert.throws(() => v.parse(input(MAX_AMOUNT_CENTS + 1)), /amountCents/);
    assert.throws(() => v.parse(input(1e308)), /amountCents/);
    assert.throws(() => v.parse(input(10.5)), /amountCents/);
  });
});
