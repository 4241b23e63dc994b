import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Shutdown } from '@sagamesh/runtime';

test('Shutdown runs cleanups last-first, all of them even when one fails, once', async () => {
  const ran: string[] = [];
  const sd = new Shutdown();
  sd.onShutdown(() => ran.push('nats'));
  sd.onShutdown(async () => {
    ran.push('consumer');
    throw new Error('consumer stop failed');
  });
  sd.onShutdown(() => ran.push('http'));
  await assert.rejects(sd.run(), (err: unknown) => {
    assert.ok(err instanceof AggregateError);
    assert.equal(err.errors.length, 1);
    return true;
  });
  await assert.rejects(sd.run());
  assert.deepEqual(ran, ['http', 'consumer', 'nats']);
});
