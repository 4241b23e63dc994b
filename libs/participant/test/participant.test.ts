import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readAddress } from '../src/participant.ts';

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

test('readAddress finds where to reply even when the rest of the command is wrong', () => {
  assert.deepEqual(readAddress(enc({ runId: 'r-1', step: 'charge', action: 'do', attempt: 2, input: 'not an object' })), {
    runId: 'r-1',
    step: 'charge',
    action: 'do',
    attempt: 2,
  });
});

test('readAddress gives nothing to reply to for unreadable data or an invalid address', () => {
  for (const bad of [
    'not json',
    '[1,2]',
    'null',
    { step: 'x', action: 'do', attempt: 1 },
    { runId: 'r.1', step: 'x', action: 'do', attempt: 1 },
    { runId: 'r', step: 'x', action: 'undo', attempt: 1 },
    { runId: 'r', step: 'x', action: 'do', attempt: 0 },
    { runId: 'r', step: 'x', action: 'do', attempt: 1.5 },
  ]) {
    assert.equal(readAddress(enc(bad)), undefined, JSON.stringify(bad));
  }
  assert.equal(readAddress(new Uint8Array([0xff, 0xfe])), undefined);
});

test('property: readAddress never throws, and what it returns is a valid address', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
      const a = readAddress(enc(text));
      if (a) assert.ok(/^[A-Za-z0-9_-]{1,128}$/.test(a.runId) && Number.isInteger(a.attempt) && a.attempt >= 1);
    }),
  );
});
