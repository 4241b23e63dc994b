import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { orderFulfillmentDefinition } from '@sagamesh/contracts';
import type { RunState, TimerKind, TimerPayload } from '../src/core/types.ts';
import { Timers } from '../src/engine/timers.ts';
import { capturingLogger } from './support/log.ts';
import { def, Driver, T0 } from './support/sim.ts';

const d = new Driver(def(orderFulfillmentDefinition));
d.start();
const base = d.state;

const timer = (kind: TimerKind, at: number): TimerPayload => ({ runId: base.runId, kind, at: T0 + at, step: 'reserve-inventory', action: 'do', attempt: 1 });
const state = (timers: TimerPayload[], phase: RunState['phase'] = 'Running'): RunState => ({ ...base, phase, timers });

/** Timers on mocked setTimeout and a clock that moves with it; `fire` fails while `failing` says so. */
function rig(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = T0;
  const fired: { at: number; kind: TimerKind; runId?: string }[] = [];
  let failing = 0;
  const { log, lines } = capturingLogger();
  const timers = new Timers({
    log,
    now: () => now,
    fire: async (runId, tm) => {
      // Recorded, not asserted here: Timers catches what fire throws (and tries again), so an assert would be lost.
      fired.push({ at: now - T0, kind: tm.kind, ...(runId === base.runId ? {} : { runId }) });
      if (failing > 0) {
        failing--;
        throw new Error('store unavailable');
      }
    },
  });
  return {
    timers,
    fired,
    lines,
    failNext: (n: number) => (failing = n),
    /** Moves the clock to T0 + `at` and lets the woken firings run. */
    async until(at: number) {
      const step = T0 + at - now;
      now = T0 + at;
      t.mock.timers.tick(step);
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('timers: in-memory wake-ups of durable timers', () => {
  it('wakes a run at each of its timers plus the grace, earliest first', async (t) => {
    const r = rig(t);
    r.timers.schedule(state([timer('step-timeout', 300), timer('retry', 100), timer('deadline', 5000)]), 500);
    await r.until(599);
    assert.deepEqual(r.fired, []);
    await r.until(600);
    assert.deepEqual(r.fired, [{ at: 600, kind: 'retry' }]);
    await r.until(799);
    assert.equal(r.fired.length, 1);
    await r.until(800);
    await r.until(5499);
    assert.deepEqual(r.fired.slice(1), [{ at: 800, kind: 'step-timeout' }]);
    await r.until(5500);
    assert.deepEqual(r.fired.slice(2), [{ at: 5500, kind: 'deadline' }]);
  });

  it('a late wake-up fires everything due, oldest first', async (t) => {
    const r = rig(t);
    r.timers.schedule(state([timer('deadline', 5000), timer('step-timeout', 300), timer('retry', 100)]), 0);
    await r.until(1000);
    assert.deepEqual(r.fired, [{ at: 1000, kind: 'retry' }, { at: 1000, kind: 'step-timeout' }]);
  });

  it('a new state replaces the plan, and planning it again does not fire twice', async (t) => {
    const r = rig(t);
    r.timers.schedule(state([timer('step-timeout', 100)]), 0);
    r.timers.schedule(state([timer('retry', 200), timer('deadline', 400)]), 0);
    r.timers.schedule(state([timer('retry', 200), timer('deadline', 400)]), 0);
    await r.until(199);
    assert.deepEqual(r.fired, []);
    await r.until(200);
    await r.until(400);
    assert.deepEqual(r.fired, [{ at: 200, kind: 'retry' }, { at: 400, kind: 'deadline' }]);
  });

  it('a failed firing is tried again 1 s later, together with the timers that came due meanwhile', async (t) => {
    const r = rig(t);
    r.failNext(1);
    r.timers.schedule(state([timer('retry', 100), timer('step-timeout', 300)]), 0);
    await r.until(100);
    assert.deepEqual(r.fired, [{ at: 100, kind: 'retry' }]);
    assert.equal(r.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('firing a timer failed')).length, 1);
    await r.until(1099);
    assert.equal(r.fired.length, 1, 'the later timer waits for the retry instead of overtaking it');
    await r.until(1100);
    assert.deepEqual(r.fired.slice(1), [{ at: 1100, kind: 'retry' }, { at: 1100, kind: 'step-timeout' }]);
  });

  it('terminal states, unschedule and stop cancel wake-ups; after stop nothing is planned', async (t) => {
    const r = rig(t);
    r.timers.schedule(state([timer('deadline', 100)]), 0);
    r.timers.schedule(state([timer('deadline', 100)], 'Succeeded'), 0);
    r.timers.schedule({ ...state([timer('deadline', 100)]), runId: 'other' }, 0);
    r.timers.unschedule('other');
    await r.until(1000);
    assert.deepEqual(r.fired, []);

    r.timers.schedule(state([timer('deadline', 2000)]), 0);
    r.timers.stop();
    r.timers.schedule(state([timer('deadline', 3000)]), 0);
    await r.until(10_000);
    assert.deepEqual(r.fired, []);
  });
});
