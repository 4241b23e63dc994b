/**
 * The chaos run at CI size: orders under 20 % step faults while every process, the nats-server included, is killed
 * with SIGKILL in turn. `npm run chaos` is the same run at 10,000 orders.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChaos } from '../../scripts/lib/chaos.ts';

test('chaos: every process killed once under faults — every saga ends, statuses match, books balance, no dead letter', async (t) => {
  const report = await runChaos({ orders: process.env.CI === 'true' ? 400 : 600, inFlight: 30, failureRate: 0.2, onProgress: (l) => t.diagnostic(l) });
  t.diagnostic(JSON.stringify(report));
  assert.equal(report.kills.length, 8, 'every service and the nats-server was killed');
  assert.deepEqual(report.violations, []);
  assert.equal(Object.values(report.outcomes).reduce((a, b) => a + b, 0), report.orders);
  assert.ok((report.outcomes.CANCELLED ?? 0) > 0, 'the faults compensated some sagas');
  assert.equal(report.outcomes.FAILED ?? 0, 0);
});
