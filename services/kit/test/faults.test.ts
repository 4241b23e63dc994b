import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fault } from '@sagamesh/contracts';
import { applyFault } from '@sagamesh/kit';

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
