/**
 * A local platform that does not come up leaves nothing running: a bench or test whose start failed once left its
 * nats-server behind, listening, for good.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { startPlatform } from '../lib/platform.ts';

/** The platform's processes this process started that still run: a nats-server, a service's bundle. */
function platformChildren(): string[] {
  const out = execFileSync('ps', ['-e', '-o', 'ppid=,pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim().split(/\s+/)[0] === String(process.pid) && /nats-server|dist\/main\.mjs/.test(l));
}

const stores = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('sagamesh-')));

test('a start that fails stops the nats-server and the services it started, and removes their store', async () => {
  const before = stores();
  // Orders refuses its configuration, so it never gets ready; the nats-server and the other services come up.
  const start = startPlatform({ ports: 'free', restart: false, readyTimeoutMs: 5_000, env: { orders: { PORT: 'not-a-port' } } });
  await assert.rejects(start, /to be ready/);
  const left = platformChildren();
  // Killed here so that a failure fails this test instead of hanging its process.
  for (const l of left) process.kill(Number(l.trim().split(/\s+/)[1]), 'SIGKILL');
  assert.deepEqual(left, [], 'processes still running after the failed start');
  assert.deepEqual([...stores()].filter((n) => !before.has(n)), [], 'the store directory of the failed start is still there');
});
