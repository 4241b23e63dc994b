import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { ConfigError } from '@sagamesh/kit';
import { ApiKeys, keyScope } from '../src/auth.ts';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';

test('keys from API_KEYS are accepted, anything else is not', () => {
  const keys = ApiKeys.fromConfig({ API_KEYS: ` ${KEY_A} ,${KEY_B},`, DEV_MODE: false });
  assert.equal(keys.size, 2);
  const a = keys.authenticate(`Bearer ${KEY_A}`);
  assert.ok(a.ok);
  assert.equal(a.caller.scope, keyScope(KEY_A));
  assert.equal(a.caller.id, keyScope(KEY_A).slice(0, 8));
  assert.ok(!a.caller.id.includes(KEY_A) && !a.caller.scope.includes(KEY_A));
  assert.ok(keys.authenticate(`bearer ${KEY_B}`).ok);
  assert.deepEqual(keys.authenticate(undefined), { ok: false, message: 'missing Authorization header: send "Authorization: Bearer <api key>"' });
  assert.equal(keys.authenticate(`Bearer ${KEY_A}x`).ok, false);
  assert.equal(keys.authenticate(KEY_A).ok, false);
  assert.equal(keys.authenticate(`Basic ${KEY_A}`).ok, false);
  assert.equal(keys.authenticate(`Bearer ${DEV_API_KEY}`).ok, false);
});

test('the dev key is accepted only under DEV_MODE', () => {
  assert.ok(ApiKeys.fromConfig({ API_KEYS: '', DEV_MODE: true }).authenticate(`Bearer ${DEV_API_KEY}`).ok);
  assert.equal(ApiKeys.fromConfig({ API_KEYS: KEY_A, DEV_MODE: false }).authenticate(`Bearer ${DEV_API_KEY}`).ok, false);
});

test('no keys, or too short keys, are configuration errors', () => {
  assert.throws(() => ApiKeys.fromConfig({ API_KEYS: '', DEV_MODE: false }), (e: unknown) => e instanceof ConfigError && /API_KEYS is required/.test(e.message));
  assert.throws(
    () => ApiKeys.fromConfig({ API_KEYS: `${KEY_A},tiny9`, DEV_MODE: true }),
    (e: unknown) => e instanceof ConfigError && /at least 16 characters/.test(e.message) && !e.message.includes('tiny9'),
  );
});
