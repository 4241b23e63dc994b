import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstream } from '@nats-io/jetstream';
import { ValidationError } from '@sagamesh/contracts';
import { FaultStore } from '@sagamesh/participant';
import { useNatsServer, waitFor } from '@sagamesh/testing';

const nats = useNatsServer();

test('put, list and clear are seen by a second store through the watch', async () => {
  // Two connections, as the admin API and a participant would each have.
  const other = jetstream(await nats.connect());
  const admin = await FaultStore.open(nats.js);
  const participant = await FaultStore.open(other);
  assert.deepEqual(participant.list(), []);

  const stored = await admin.put({ target: 'payments.charge', failureRate: 0.2 });
  assert.deepEqual(stored, { target: 'payments.charge', failureRate: 0.2, latencyMs: 0, crashAfterCommit: false });
  await admin.put({ target: 'inventory.reserve', failureRate: 0, latencyMs: 100, crashAfterCommit: true });
  await waitFor(() => participant.list().length === 2, { what: 'the second store to see both faults' });
  assert.deepEqual(participant.list().map((f) => f.target), ['inventory.reserve', 'payments.charge']);
  assert.equal(participant.list().find((f) => f.target === 'payments.charge')?.failureRate, 0.2);

  await admin.put({ target: 'payments.charge', failureRate: 1, latencyMs: 0, crashAfterCommit: false });
  await waitFor(() => participant.list().find((f) => f.target === 'payments.charge')?.failureRate === 1, { what: 'the update' });

  // A store opened now starts with the current faults, without waiting for a change.
  const late = await FaultStore.open(other);
  assert.deepEqual(late.list(), participant.list());

  await admin.clear();
  await waitFor(() => participant.list().length === 0 && late.list().length === 0, { what: 'the clear' });
  assert.deepEqual(admin.list(), []);
  await Promise.all([admin.close(), participant.close(), late.close()]);
});

test('put rejects an invalid fault with the schema reason', async () => {
  const store = await FaultStore.open(nats.js);
  await assert.rejects(store.put({ target: 'Payments charge', failureRate: 2, latencyMs: 0, crashAfterCommit: false }), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.match(err.message, /^invalid fault: \/target: /);
    return true;
  });
  await store.close();
});
