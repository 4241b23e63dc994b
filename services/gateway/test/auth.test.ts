import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { ConfigError } from '@sagamesh/runtime';
import { ApiKeys, keyScope, mayRead, type Caller } from '../src/auth.ts';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';
const ADMIN = 'admin-0123456789abcdef';
const config = (c: { API_KEYS?: string; ADMIN_API_KEYS?: string; DEV_MODE?: boolean }) => ({ API_KEYS: '', ADMIN_API_KEYS: '', DEV_MODE: false, ...c });

test('keys from API_KEYS are accepted, as customer keys; anything else is not', () => {
  const keys = ApiKeys.fromConfig(config({ API_KEYS: ` ${KEY_A} ,${KEY_B},` }));
  assert.equal(keys.size, 2);
  const a = keys.authenticate(`Bearer ${KEY_A}`);
  assert.ok(a.ok);
  assert.equal(a.caller.scope, keyScope(KEY_A));
  assert.equal(a.caller.id, keyScope(KEY_A).slice(0, 8));
  assert.equal(a.caller.role, 'customer');
  assert.ok(!a.caller.id.includes(KEY_A) && !a.caller.scope.includes(KEY_A));
  assert.ok(keys.authenticate(`bearer ${KEY_B}`).ok);
  assert.deepEqual(keys.authenticate(undefined), { ok: false, message: 'missing Authorization header: send "Authorization: Bearer <api key>"' });
  assert.equal(keys.authenticate(`Bearer ${KEY_A}x`).ok, false);
  assert.equal(keys.authenticate(KEY_A).ok, false);
  assert.equal(keys.authenticate(`Basic ${KEY_A}`).ok, false);
  assert.equal(keys.authenticate(`Bearer ${DEV_API_KEY}`).ok, false);
});

test('keys from ADMIN_API_KEYS are admin keys', () => {
  const keys = ApiKeys.fromConfig(config({ API_KEYS: KEY_A, ADMIN_API_KEYS: ` ${ADMIN}, ` }));
  assert.deepEqual(keys.counts(), { admin: 1, customer: 1 });
  const admin = keys.authenticate(`Bearer ${ADMIN}`);
  assert.ok(admin.ok);
  assert.deepEqual(admin.caller, { scope: keyScope(ADMIN), id: keyScope(ADMIN).slice(0, 8), role: 'admin' });
  // Admin keys alone are a valid configuration (a gateway for operators only).
  assert.deepEqual(ApiKeys.fromConfig(config({ ADMIN_API_KEYS: ADMIN })).counts(), { admin: 1, customer: 0 });
});

test('the dev key is accepted only under DEV_MODE, as an admin key', () => {
  const dev = ApiKeys.fromConfig(config({ DEV_MODE: true })).authenticate(`Bearer ${DEV_API_KEY}`);
  assert.ok(dev.ok);
  assert.equal(dev.caller.role, 'admin');
  assert.equal(ApiKeys.fromConfig(config({ API_KEYS: KEY_A })).authenticate(`Bearer ${DEV_API_KEY}`).ok, false);
  // Listed as an admin key too, it is still one key.
  assert.equal(ApiKeys.fromConfig(config({ ADMIN_API_KEYS: DEV_API_KEY, DEV_MODE: true })).size, 1);
});

test('no keys, too short keys, or a key in both roles are configuration errors that name no key', () => {
  assert.throws(() => ApiKeys.fromConfig(config({})), (e: unknown) => e instanceof ConfigError && /API_KEYS or ADMIN_API_KEYS is required/.test(e.message));
  assert.throws(
    () => ApiKeys.fromConfig(config({ API_KEYS: `${KEY_A},tiny9`, DEV_MODE: true })),
    (e: unknown) => e instanceof ConfigError && /^API_KEYS must list keys of at least 16 characters/.test(e.message) && !e.message.includes('tiny9'),
  );
  assert.throws(
    () => ApiKeys.fromConfig(config({ API_KEYS: KEY_A, ADMIN_API_KEYS: 'short-admin' })),
    (e: unknown) => e instanceof ConfigError && /^ADMIN_API_KEYS must list keys of at least 16 characters \(1 too short\)/.test(e.message),
  );
  assert.throws(
    () => ApiKeys.fromConfig(config({ API_KEYS: `${KEY_A},${KEY_B}`, ADMIN_API_KEYS: `${ADMIN},${KEY_B}` })),
    (e: unknown) => e instanceof ConfigError && /must not share keys \(1 in both\)/.test(e.message) && !e.message.includes(KEY_B),
  );
  assert.throws(
    () => ApiKeys.fromConfig(config({ API_KEYS: DEV_API_KEY, DEV_MODE: true })),
    (e: unknown) => e instanceof ConfigError && /the dev key, an admin key under DEV_MODE/.test(e.message),
  );
});

test('an order is read by its owner and by admins; an order without an owner by admins only', () => {
  const customer = (scope: string): Caller => ({ scope, id: scope.slice(0, 8), role: 'customer' });
  const admin: Caller = { scope: keyScope(ADMIN), id: 'x', role: 'admin' };
  const a = customer(keyScope(KEY_A));
  assert.equal(mayRead(a, keyScope(KEY_A)), true);
  assert.equal(mayRead(a, keyScope(KEY_B)), false);
  assert.equal(mayRead(a, undefined), false);
  assert.equal(mayRead(admin, keyScope(KEY_B)), true);
  assert.equal(mayRead(admin, undefined), true);
});
