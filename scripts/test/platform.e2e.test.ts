/**
 * A local platform that does not come up leaves nothing running: a bench or test whose start failed once left its
 * nats-server behind, listening, for good.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { startPlatform } from '../lib/platform.ts';

/** The platform's processes this process started that still run (a nats-server, a service's bundle), from /proc. */
function platformChildren(): { pid: number; args: string }[] {
  const out: { pid: number; args: string }[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      // The parent pid is the second field after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (ppid === process.pid && /nats-server|dist\/main\.mjs/.test(args)) out.push({ pid: Number(name), args });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const stores = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('sagamesh-')));

test('a start that fails stops the nats-server and the services it started, and removes their store', async () => {
  const before = stores();
  // Orders refuses its configuration, so it never gets ready; the nats-server and the other services come up.
  const start = startPlatform({ ports: 'free', restart: false, readyTimeoutMs: 5_000, env: { orders: { PORT: 'not-a-port' } } });
  await assert.rejects(start, /to be ready/);
  const left = platformChildren();
  // Killed here so that a failure fails this test instead of hanging its process.
  for (const { pid } of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, [], 'processes still running after the failed start');
  assert.deepEqual([...stores()].filter((n) => !before.has(n)), [], 'the store directory of the failed start is still there');
});
