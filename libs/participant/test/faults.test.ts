import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fault } from '@sagamesh/contracts';
import { applyFault } from '@sagamesh/participant';

const fault = (f: Partial<Fault>): Fault => ({ target: 'payments.charge', failureRate: 0, latencyMs: 0, crashAfterCommit: false, ...f });

function recorder() {
  const slept: number[] = [];
  let crashes = 0;
  return {
    slept,
    crashes: () => crashes,
    opts: {
      sleep: async (ms: number) => {
        slept.push(ms);
      },
      crash: (): never => {
        crashes++;
        throw new Error('crashed');
      },
    },
  };
}

test('no fault: no sleep, no failure, no crash', async () => {
  const r = recorder();
  const d = await applyFault(undefined, r.opts);
  assert.equal(d.fail, false);
  d.crashAfterCommit();
  assert.deepEqual(r.slept, []);
  assert.equal(r.crashes(), 0);
});

test('latency is slept before deciding', async () => {
  const r = recorder();
  await applyFault(fault({ latencyMs: 250 }), r.opts);
  assert.deepEqual(r.slept, [250]);
});

test('failure follows faultFires: rate 1 always, rate 0.3 only below it', async () => {
  assert.equal((await applyFault(fault({ failureRate: 1 }), { random: () => 0.999 })).fail, true);
  assert.equal((await applyFault(fault({ failureRate: 0.3 }), { random: () => 0.29 })).fail, true);
  assert.equal((await applyFault(fault({ failureRate: 0.3 }), { random: () => 0.3 })).fail, false);
});

test('crashAfterCommit crashes only when asked and the command did not fail', async () => {
  const r = recorder();
  const d = await applyFault(fault({ crashAfterCommit: true }), r.opts);
  assert.throws(() => d.crashAfterCommit(), /crashed/);
  assert.equal(r.crashes(), 1);
  const failed = await applyFault(fault({ crashAfterCommit: true, failureRate: 1 }), r.opts);
  failed.crashAfterCommit();
  assert.equal(r.crashes(), 1);
});

test('the default sleep gives up when the signal aborts', async () => {
  const ac = new AbortController();
  const p = applyFault(fault({ latencyMs: 60_000 }), { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, { name: 'AbortError' });
});

// The real crash: a child process that commits nothing and calls crashAfterCommit with the default crash.
const CRASH = `import { applyFault } from '@sagamesh/participant';
(await applyFault({ target: 'payments.charge', failureRate: 0, latencyMs: 0, crashAfterCommit: true })).crashAfterCommit();
console.log('survived');`;
function crashChild(wrapper: string[] = []) {
  const [command, ...args] = [...wrapper, process.execPath, '--input-type=module', '-e', CRASH];
  return spawnSync(command!, args, { cwd: import.meta.dirname, encoding: 'utf8', timeout: 20_000 });
}

test('the default crash ends the process with SIGKILL', () => {
  const r = crashChild();
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.doesNotMatch(r.stdout, /survived/);
});

test('as PID 1 without an init, where the kernel drops its own SIGKILL, it still ends: status 137', (t) => {
  // A fresh PID namespace makes the child PID 1, as in a container whose entrypoint is node itself.
  const probe = spawnSync('unshare', ['--pid', '--fork', 'true']);
  if (probe.status !== 0) return t.skip(`unshare --pid is not permitted here (${probe.error?.message ?? probe.stderr.toString().trim()})`);
  const r = crashChild(['unshare', '--pid', '--fork']);
  assert.equal(r.status, 137, r.stderr);
  assert.match(r.stderr, /SIGKILL did not end the process \(PID 1 without an init\?\): exiting 137/);
  assert.doesNotMatch(r.stdout, /survived/);
});
