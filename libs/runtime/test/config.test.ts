import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { CommonConfig, ConfigError, loadConfig } from '@sagamesh/runtime';

const Schema = Type.Object({
  ...CommonConfig,
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  RATE: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
  ENABLED: Type.Boolean({ default: false }),
  API_KEY: Type.String({ minLength: 16 }),
});

test('defaults apply and strings are coerced', () => {
  const c = loadConfig(Schema, { API_KEY: 'k'.repeat(16), PORT: '9000', RATE: '0.25', ENABLED: 'true', LOG_LEVEL: 'debug' });
  assert.deepEqual(c, {
    NATS_URL: 'nats://127.0.0.1:4222',
    LOG_LEVEL: 'debug',
    HOST: '0.0.0.0',
    SHUTDOWN_GRACE_MS: 10_000,
    SHUTDOWN_DELAY_MS: 0,
    MAX_IN_FLIGHT: 1024,
    JETSTREAM_REPLICAS: 1,
    JETSTREAM_STORE_MIB: 1536,
    PORT: 9000,
    RATE: 0.25,
    ENABLED: true,
    API_KEY: 'k'.repeat(16),
  });
});

test('an empty variable counts as unset', () => {
  assert.equal(loadConfig(Schema, { API_KEY: 'k'.repeat(16), PORT: '' }).PORT, 8080);
});

test('booleans accept 1/0 and any case', () => {
  assert.equal(loadConfig(Schema, { API_KEY: 'k'.repeat(16), ENABLED: '1' }).ENABLED, true);
  assert.equal(loadConfig(Schema, { API_KEY: 'k'.repeat(16), ENABLED: 'FALSE' }).ENABLED, false);
});

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(Schema, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('loadConfig did not throw');
}

test('a bad integer names the variable, the rule and the value', () => {
  const err = configError({ API_KEY: 'k'.repeat(16), PORT: 'abc' });
  assert.equal(err.message, 'PORT must be an integer between 0 and 65535, got "abc"');
});

test('no silent truncation: 1.5 and 0x10 are not integers', () => {
  assert.match(configError({ API_KEY: 'k'.repeat(16), PORT: '1.5' }).message, /^PORT must be an integer/);
  assert.match(configError({ API_KEY: 'k'.repeat(16), PORT: '0x10' }).message, /^PORT must be an integer/);
});

test('out of range, bad boolean, bad enum and a missing required variable are all reported at once', () => {
  const err = configError({ PORT: '70000', ENABLED: 'yes', LOG_LEVEL: 'loud', RATE: '2' });
  assert.deepEqual(err.issues, [
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    'PORT must be an integer between 0 and 65535, got "70000"',
    'RATE must be a number between 0 and 1, got "2"',
    'ENABLED must be true or false, got "yes"',
    'API_KEY is required',
  ]);
});

test('a secret value is never echoed in the error', () => {
  const err = configError({ API_KEY: 'short-secret' });
  assert.equal(err.message, 'API_KEY must be a string of at least 16 characters');
  assert.doesNotMatch(err.message, /short-secret/);
});

test('property: every integer in range round-trips; every non-numeric string is rejected naming PORT', async () => {
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), (n) => loadConfig(Schema, { API_KEY: 'k'.repeat(16), PORT: String(n) }).PORT === n),
  );
  fc.assert(
    fc.property(
      fc.string({ minLength: 1 }).filter((s) => !/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(s)),
      (s) => configError({ API_KEY: 'k'.repeat(16), PORT: s }).message.startsWith('PORT must be an integer'),
    ),
  );
});
