import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelayMs, commandMsgId, orderFulfillmentDefinition, type SagaDefinitionSpec, type StepReply } from '@sagamesh/contracts';
import { resolveDefinition } from '../src/core/definition.ts';
import { timerId, timerIsLive, transition } from '../src/core/transition.ts';
import type { EngineInput, TimerPayload } from '../src/core/types.ts';
import { toRunView } from '../src/core/view.ts';
import { commands, def, Driver, events, replyTo, simulate, T0, terminal, timers, type Script, type SimStep } from './support/sim.ts';

const order = def(orderFulfillmentDefinition, 'builtin.order-fulfillment');
const STEPS = ['reserve-inventory', 'charge-payment', 'create-shipment'];

/** Starts a run and lets the first `n` steps succeed; returns the driver and the last effects. */
function succeedSteps(n: number) {
  const d = new Driver(order);
  let fx = d.start();
  for (let i = 0; i < n; i++) fx = d.apply(replyTo(commands(fx)[0]!.command, 'succeeded'));
  return { d, fx };
}

describe('resolveDefinition and backoff', () => {
  it('applies SagaDefaults to absent fields', () => {
    const r = resolveDefinition('builtin.x', 'r', { steps: [{ name: 'a', action: { service: 'inventory', command: 'reserve' } }] });
    assert.equal(r.steps[0]!.timeoutMs, 5000);
    assert.deepEqual(r.steps[0]!.retry, { attempts: 3, initialMs: 100, maxMs: 5000, multiplier: 2 });
    assert.equal(r.deadlineMs, 60_000);
    assert.equal(r.compensationRetry.attempts, Number.POSITIVE_INFINITY);
    assert.equal(r.compensationRetry.giveUpAfterMs, 6 * 3_600_000);
    assert.equal(r.compensationRetry.maxMs, 30_000);
  });
  it('grows delays by the multiplier up to the cap', () => {
    const p = { attempts: 10, initialMs: 100, maxMs: 1000, multiplier: 2 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(p, n)), [100, 200, 400, 800, 1000, 1000]);
  });
});

describe('transition: examples', () => {
  it('happy path: each step in order, then Succeeded', () => {
    const d = new Driver(order);
    let fx = d.start({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    assert.equal(d.state.phase, 'Running');
    assert.deepEqual(events(fx).map((e) => e.event), ['started', 'step_started']);
    assert.deepEqual(timers(fx).map((t) => t.timer.kind).sort(), ['deadline', 'step-timeout']);
    assert.equal(timers(fx).find((t) => t.timer.kind === 'deadline')!.at, T0 + 60_000);
    for (const [i, name] of STEPS.entries()) {
      const [cmd] = commands(fx);
      assert.equal(cmd!.command.step, name);
      assert.equal(cmd!.msgId, `r1.${name}.1`);
      assert.equal(cmd!.subject, `cmd.${order.steps[i]!.action.service}.${order.steps[i]!.action.command}`);
      fx = d.apply(replyTo(cmd!.command, 'succeeded', { output: { n: i } }), d.now + 1);
    }
    assert.equal(d.state.phase, 'Succeeded');
    assert.ok(d.state.steps.every((s) => s.status === 'Succeeded' && s.attempts === 1));
    assert.deepEqual(d.state.steps[2]!.output, { n: 2 });
    assert.deepEqual(events(fx).map((e) => e.event), ['step_succeeded', 'succeeded']);
    assert.deepEqual(fx.filter((e) => e.type === 'ended'), [{ type: 'ended', outcome: 'succeeded', durationSeconds: 0.003 }]);
    assert.equal(commands(d.all).length, 3);
    const view = toRunView(d.state);
    assert.equal(view.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(view.currentStep, undefined);
    assert.equal(view.version, d.state.version);
  });

  for (const failAt of [0, 1, 2]) {
    it(`failure at step ${failAt} compensates exactly the completed steps in reverse`, () => {
      const { d, fx } = succeedSteps(failAt);
      let out = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
      const compensated: string[] = [];
      while (commands(out).length) {
        const [c] = commands(out);
        assert.equal(c!.command.action, 'compensate');
        compensated.push(c!.command.step);
        out = d.apply(replyTo(c!.command, 'succeeded'));
      }
      assert.deepEqual(compensated, STEPS.slice(0, failAt).reverse());
      assert.equal(d.state.phase, 'Compensated');
      assert.deepEqual(d.state.steps.map((s) => s.status), [
        ...Array(failAt).fill('Compensated'), 'Failed', ...Array(2 - failAt).fill('Skipped'),
      ]);
      assert.equal(d.state.error?.code, 'step_failed');
    });
  }

  it('timeout → retry with backoff → success; a stale failure of attempt 1 is ignored, its late success taken', () => {
    const d = new Driver(order);
    const fx = d.start();
    const timeout = timers(fx).find((t) => t.timer.kind === 'step-timeout')!;
    assert.equal(timeout.at, T0 + 2000);
    const afterTimeout = d.fire(timeout);
    assert.equal(commands(afterTimeout).length, 0);
    assert.equal(d.state.steps[0]!.status, 'TimedOut');
    const [retry] = timers(afterTimeout);
    assert.deepEqual(retry!.timer, { runId: 'r1', kind: 'retry', step: 'reserve-inventory', action: 'do', attempt: 2, at: T0 + 2100 });
    assert.deepEqual(afterTimeout.filter((e) => e.type === 'step-retried'), [{ type: 'step-retried', step: 'reserve-inventory' }]);
    const retried = d.fire(retry!);
    const [cmd] = commands(retried);
    assert.equal(cmd!.msgId, 'r1.reserve-inventory.2');
    assert.equal(d.state.steps[0]!.attempts, 2);
    // A late failure of attempt 1 and the old attempt's timer change nothing; its late success is the step's outcome
    // (the participant answers every attempt of a step from one record).
    assert.deepEqual(d.apply(replyTo({ ...cmd!.command, attempt: 1 }, 'failed')), []);
    assert.deepEqual(d.fire(timeout), []);
    const next = d.apply(replyTo({ ...cmd!.command, attempt: 1 }, 'succeeded'));
    assert.equal(commands(next)[0]!.command.step, 'charge-payment');
    assert.equal(d.state.steps[0]!.status, 'Succeeded');
    assert.equal(d.state.steps[0]!.error, undefined);
    // The current attempt's own reply, arriving after, is a duplicate now.
    assert.deepEqual(d.apply(replyTo(cmd!.command, 'succeeded')), []);
  });

  it('a compensation whose reply comes after its timeout still ends: a late success of an earlier attempt is taken', () => {
    const { d, fx } = succeedSteps(1);
    let out = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
    const [release1] = commands(out);
    assert.deepEqual([release1!.command.step, release1!.command.action, release1!.command.attempt], ['reserve-inventory', 'compensate', 1]);
    out = d.fire(timers(out).find((t) => t.timer.kind === 'step-timeout')!);
    out = d.fire(timers(out).find((t) => t.timer.kind === 'compensation-retry')!);
    assert.equal(commands(out)[0]!.command.attempt, 2);
    // Attempt 1's success arrives while attempt 2 is out: the step is compensated and the run ends.
    d.apply(replyTo(release1!.command, 'succeeded'));
    assert.equal(d.state.steps[0]!.status, 'Compensated');
    assert.equal(d.state.phase, 'Compensated');
  });

  it('a compensation retried after timeouts repeats the command out under its de-dup id; its failure counts; after a failure the retry is new', () => {
    const { d, fx } = succeedSteps(1);
    let out = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
    const [first] = commands(out);
    const ids: string[] = [first!.msgId];
    // Inventory away: two timeouts. Each retry is the same command for the server (kept once while it waits).
    for (let i = 0; i < 2; i++) {
      out = d.fire(timers(out).find((t) => t.timer.kind === 'step-timeout')!);
      out = d.fire(timers(out).find((t) => t.timer.kind === 'compensation-retry')!);
      ids.push(commands(out)[0]!.msgId);
      assert.equal(commands(out)[0]!.command.attempt, i + 2);
    }
    assert.deepEqual(ids, ['r1.reserve-inventory.compensate.1', 'r1.reserve-inventory.compensate.1', 'r1.reserve-inventory.compensate.1']);
    // Back, it answers the one command it got (attempt 1) with a failure: that is the current attempt's answer.
    out = d.apply(replyTo(first!.command, 'failed'));
    const retry = timers(out).find((t) => t.timer.kind === 'compensation-retry');
    assert.ok(retry, 'the failure is taken and retried');
    out = d.fire(retry);
    assert.equal(commands(out)[0]!.msgId, 'r1.reserve-inventory.compensate.4', 'after a failure, a new command');
    assert.equal(d.state.steps[0]!.compensationResendOf, undefined);
    d.apply(replyTo(commands(out)[0]!.command, 'succeeded'));
    assert.equal(d.state.phase, 'Compensated');
  });

  it('a step timing out on every attempt is compensated too (unknown outcome), then the earlier ones', () => {
    const { d, fx } = succeedSteps(1);
    let out = fx;
    for (let attempt = 1; attempt <= 3; attempt++) {
      assert.equal(commands(out)[0]!.msgId, `r1.charge-payment.${attempt}`);
      out = d.fire(timers(out).find((t) => t.timer.kind === 'step-timeout')!);
      if (attempt < 3) out = d.fire(timers(out)[0]!);
    }
    assert.equal(d.state.phase, 'Compensating');
    assert.equal(d.state.error?.code, 'step_timed_out');
    assert.ok(out.some((e) => e.type === 'step-ended' && e.outcome === 'timed_out'));
    const compensated: string[] = [];
    while (commands(out).length) {
      const [c] = commands(out);
      compensated.push(c!.command.step);
      out = d.apply(replyTo(c!.command, 'succeeded'));
    }
    assert.deepEqual(compensated, ['charge-payment', 'reserve-inventory']);
    assert.equal(d.state.phase, 'Compensated');
    assert.deepEqual(d.state.steps.map((s) => s.status), ['Compensated', 'Compensated', 'Skipped']);
  });

  it('the order saga keeps retrying a failing compensation for hours (capped backoff), not seconds', () => {
    const { d, fx } = succeedSteps(2);
    let out = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
    const startedAt = d.now;
    const delays: number[] = [];
    for (let attempt = 1; d.state.phase === 'Compensating' && d.state.cursor === 1; attempt++) {
      const [c] = commands(out);
      // After a timeout (even attempts) the next one repeats its command under its de-dup id.
      assert.equal(c!.msgId, `r1.charge-payment.compensate.${attempt > 1 && attempt % 2 === 1 ? attempt - 1 : attempt}`);
      // Alternate failures and timeouts: both count.
      out = attempt % 2 ? d.apply(replyTo(c!.command, 'failed')) : d.fire(timers(out).find((t) => t.timer.kind === 'step-timeout')!);
      const retry = timers(out).find((t) => t.timer.kind === 'compensation-retry');
      if (!retry) break;
      delays.push(retry.at - d.now);
      out = d.fire(retry);
    }
    assert.deepEqual(delays.slice(0, 9), [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    assert.ok(Math.max(...delays) === 10_000, 'the backoff is capped');
    const elapsed = d.now - startedAt;
    assert.ok(elapsed >= 6 * 3_600_000 - 12_000 && elapsed <= 6 * 3_600_000, `gave up after ${elapsed}ms, the 6h horizon`);
    // Giving up on charge-payment still undoes reserve-inventory.
    const [release] = commands(out);
    assert.equal(release!.msgId, 'r1.reserve-inventory.compensate.1');
    d.apply(replyTo(release!.command, 'succeeded'));
    assert.equal(d.state.phase, 'Failed');
    assert.deepEqual(d.state.steps.map((s) => s.status), ['Compensated', 'CompensationFailed', 'Failed']);
    assert.equal(d.state.error?.code, 'compensation_failed');
    assert.match(d.state.error!.message, /charge-payment gave up after \d+ attempt/);
    assert.deepEqual(events(d.all).filter((e) => ['compensation_failed', 'step_compensated', 'failed'].includes(e.event)).map((e) => `${e.event}:${e.step ?? ''}`), [
      'compensation_failed:charge-payment',
      'step_compensated:reserve-inventory',
      'failed:',
    ]);
    assert.deepEqual(d.all.filter((e) => e.type === 'ended').map((e) => 'outcome' in e && e.outcome), ['failed']);
  });

  it('an attempt cap, when a definition sets one, ends the retries before the horizon', () => {
    const d = new Driver(def({ ...orderFulfillmentDefinition, compensationRetry: { attempts: 4, backoff: { initial: '100ms', max: '1s', multiplier: 2 } } }, 'capped'));
    let fx = d.start();
    for (let i = 0; i < 2; i++) fx = d.apply(replyTo(commands(fx)[0]!.command, 'succeeded'));
    let out = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
    for (let attempt = 1; attempt <= 4; attempt++) {
      out = d.apply(replyTo(commands(out)[0]!.command, 'failed'));
      const retry = timers(out).find((t) => t.timer.kind === 'compensation-retry');
      if (attempt < 4) out = d.fire(retry!);
      else assert.equal(retry, undefined);
    }
    assert.equal(d.state.steps[1]!.status, 'CompensationFailed');
    assert.equal(commands(out)[0]!.msgId, 'r1.reserve-inventory.compensate.1');
  });

  it('the deadline compensates the running step (unknown) and the completed ones', () => {
    const { d, fx } = succeedSteps(1);
    const deadline = timers(d.log[0]!.effects).find((t) => t.timer.kind === 'deadline')!;
    const out = d.fire(deadline);
    assert.equal(d.state.phase, 'Compensating');
    assert.equal(d.state.error?.code, 'deadline_exceeded');
    assert.equal(d.state.steps[1]!.status, 'Compensating');
    assert.equal(commands(out)[0]!.msgId, 'r1.charge-payment.compensate.1');
    // The running step's late reply is ignored now.
    assert.deepEqual(d.apply(replyTo(commands(fx)[0]!.command, 'succeeded')), []);
    // A deadline while compensating changes nothing.
    assert.deepEqual(d.fire(deadline), []);
  });

  it('cancel compensates what is done; a second cancel and cancels of ended runs do nothing', () => {
    const { d } = succeedSteps(2);
    const out = d.apply({ type: 'cancel', reason: 'operator asked' });
    assert.equal(d.state.phase, 'Compensating');
    assert.equal(d.state.error?.message, 'cancelled: operator asked');
    assert.deepEqual(commands(out).map((c) => c.command.step), ['create-shipment']);
    assert.deepEqual(d.apply({ type: 'cancel' }), []);
    let c = commands(out)[0]!;
    const order2: string[] = [];
    for (;;) {
      order2.push(c.command.step);
      const next = commands(d.apply(replyTo(c.command, 'succeeded')));
      if (!next.length) break;
      c = next[0]!;
    }
    assert.deepEqual(order2, ['create-shipment', 'charge-payment', 'reserve-inventory']);
    assert.equal(d.state.phase, 'Compensated');
    const v = d.state.version;
    assert.deepEqual(d.apply({ type: 'cancel' }), []);
    assert.equal(d.state.version, v);
  });

  it('cancel before any step completed ends Compensated after compensating the unknown first step', () => {
    const d = new Driver(order);
    d.start();
    const out = d.apply({ type: 'cancel' });
    assert.deepEqual(commands(out).map((c) => c.msgId), ['r1.reserve-inventory.compensate.1']);
  });

  it('steps without a compensation are passed over', () => {
    const spec: SagaDefinitionSpec = {
      steps: [
        { name: 'a', action: { service: 's', command: 'a' }, compensation: { service: 's', command: 'undo-a' } },
        { name: 'b', action: { service: 's', command: 'b' } },
        { name: 'c', action: { service: 's', command: 'c' } },
      ],
    };
    const d = new Driver(def(spec));
    let fx = d.start();
    fx = d.apply(replyTo(commands(fx)[0]!.command, 'succeeded'));
    fx = d.apply(replyTo(commands(fx)[0]!.command, 'succeeded'));
    fx = d.apply(replyTo(commands(fx)[0]!.command, 'failed'));
    assert.deepEqual(commands(fx).map((c) => c.subject), ['cmd.s.undo-a']);
    d.apply(replyTo(commands(fx)[0]!.command, 'succeeded'));
    assert.deepEqual(d.state.steps.map((s) => s.status), ['Compensated', 'Succeeded', 'Failed']);
    assert.equal(d.state.phase, 'Compensated');
  });

  it('ignores duplicates, wrong actions, wrong steps, other runs and everything once terminal', () => {
    const d = new Driver(order);
    const fx = d.start();
    const cmd = commands(fx)[0]!.command;
    assert.deepEqual(d.apply(replyTo({ ...cmd, action: 'compensate' }, 'succeeded')), []);
    assert.deepEqual(d.apply(replyTo({ ...cmd, step: 'charge-payment' }, 'succeeded')), []);
    assert.deepEqual(d.apply(replyTo({ ...cmd, runId: 'other' }, 'succeeded')), []);
    assert.deepEqual(d.apply(replyTo({ ...cmd, attempt: 2 }, 'succeeded')), []);
    assert.equal(d.state.version, 1);
    assert.equal(commands(d.apply(replyTo(cmd, 'succeeded'))).length, 1);
    const same = d.state;
    assert.deepEqual(d.apply(replyTo(cmd, 'succeeded')), []);
    assert.equal(d.state, same, 'an ignored input returns the very same run');
    assert.deepEqual(d.apply({ type: 'start', runId: 'r1', origin: 'order', input: {} }), [], 'a second start is a no-op');
  });

  it('throws on a non-start input without a run', () => {
    assert.throws(() => transition(undefined, order, { type: 'cancel' }, T0), /does not exist/);
  });
});

// ---- Properties over random definitions and random worlds ----

const target = fc.record({ service: fc.constantFrom('inventory', 'payments', 'shipping'), command: fc.constantFrom('a', 'b', 'c') });
const policy = fc.record({
  attempts: fc.integer({ min: 1, max: 4 }),
  backoff: fc.record({ initial: fc.constantFrom('10ms', '100ms'), max: fc.constantFrom('50ms', '1s'), multiplier: fc.constantFrom(1, 2, 3) }),
});
const arbSpec: fc.Arbitrary<SagaDefinitionSpec> = fc
  .array(
    fc.record(
      { action: target, compensation: fc.option(target, { nil: undefined }), timeout: fc.constantFrom('100ms', '1s'), retry: policy },
      { requiredKeys: ['action', 'timeout', 'retry'] },
    ),
    { minLength: 1, maxLength: 6 },
  )
  .chain((steps) =>
    fc.record({
      steps: fc.constant(steps.map((s, i) => ({ name: `s${i}`, ...s, ...(s.compensation ? {} : { compensation: undefined }) }))),
      deadline: fc.constantFrom('800ms', '5s', '60s', '60s'),
      compensationRetry: policy,
    }),
  )
  .map((spec) => ({ ...spec, steps: spec.steps.map(({ compensation, ...rest }) => (compensation ? { ...rest, compensation } : rest)) }));

function arbInject(nSteps: number): fc.Arbitrary<EngineInput> {
  const step = fc.constantFrom(...Array.from({ length: nSteps }, (_, i) => `s${i}`), 'ghost');
  const action = fc.constantFrom('do' as const, 'compensate' as const);
  const attempt = fc.integer({ min: 1, max: 5 });
  const reply: fc.Arbitrary<EngineInput> = fc
    .record({ runId: fc.constantFrom('r1', 'other'), step, action, attempt, outcome: fc.constantFrom('succeeded' as const, 'failed' as const) })
    .map((reply: StepReply) => ({ type: 'reply', reply }));
  const timer: fc.Arbitrary<EngineInput> = fc
    .record({
      runId: fc.constantFrom('r1', 'other'),
      kind: fc.constantFrom('step-timeout' as const, 'retry' as const, 'deadline' as const, 'compensation-retry' as const),
      step, action, attempt,
      at: fc.integer({ min: T0, max: T0 + 5000 }),
    })
    .map((timer: TimerPayload) => ({ type: 'timer', timer }));
  return fc.oneof({ weight: 4, arbitrary: reply }, { weight: 4, arbitrary: timer }, { weight: 1, arbitrary: fc.constant<EngineInput>({ type: 'cancel' }) });
}

const arbWorld = arbSpec.chain((spec) =>
  fc.record({
    spec: fc.constant(spec),
    script: fc.record({
      steps: fc.array(
        fc.record(
          {
            pick: fc.nat(),
            dup: fc.constantFrom(false, false, false, true),
            outcome: fc.constantFrom<SimStep['outcome']>('succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed', 'drop'),
            inject: fc.option(arbInject(spec.steps.length), { freq: 3, nil: undefined }),
          },
          { requiredKeys: ['pick', 'dup', 'outcome'] },
        ),
        { maxLength: 120 },
      ),
      drainOutcomes: fc.array(fc.constantFrom<'succeeded' | 'failed'>('succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed'), { minLength: 1, maxLength: 8 }),
    }) as fc.Arbitrary<Script>,
  }),
);

/** One random world's run: its definition, every transition, and the commands it sent. */
function worldRun({ spec, script }: { spec: SagaDefinitionSpec; script: Script }) {
  const d = def(spec);
  const sim = simulate(d, script, { type: 'start', runId: 'r1', origin: 'k8s', input: { x: 1 } });
  const all = sim.entries.flatMap((e) => e.effects);
  const cmds = all.filter((e) => e.type === 'command');
  const doneSteps = new Set(cmds.filter((c) => c.command.action === 'do').map((c) => c.command.step));
  const compSeq = cmds.filter((c) => c.command.action === 'compensate');
  return { d, sim, all, cmds, doneSteps, compSeq };
}

/** Each invariant is its own test over the same random worlds, so a failure names the one that broke. */
function inEveryWorld(check: (run: ReturnType<typeof worldRun>) => void): void {
  fc.assert(fc.property(arbWorld, (world) => check(worldRun(world))), { numRuns: 1000 });
}

const stepIndex = (step: string) => Number(step.slice(1));

describe('transition: invariants in random worlds (duplicates, reordering, stale inputs, timers, cancels)', () => {
  it('commands each (step, action, attempt) once, and no action after compensation began', () => {
    inEveryWorld(({ cmds }) => {
      const attempts = cmds.map((c) => `${c.command.step}.${c.command.action}.${c.command.attempt}`);
      assert.equal(new Set(attempts).size, attempts.length, `duplicate command: ${attempts}`);
      const firstComp = cmds.findIndex((c) => c.command.action === 'compensate');
      if (firstComp >= 0) assert.ok(cmds.slice(firstComp).every((c) => c.command.action === 'compensate'), 'an action after compensation began');
    });
  });

  it("a command's de-dup id is its own attempt's, or (a compensation retried after a timeout) the one of the command before it", () => {
    inEveryWorld(({ cmds }) => {
      const previous = new Map<string, string>();
      for (const c of cmds) {
        const { runId, step, action, attempt } = c.command;
        const own = commandMsgId(runId, step, action, attempt);
        const key = `${step}.${action}`;
        if (c.msgId !== own) assert.ok(action === 'compensate' && c.msgId === previous.get(key), `${c.msgId} for attempt ${attempt} of ${key}`);
        previous.set(key, c.msgId);
      }
    });
  });

  it('a compensation repeats an earlier command only after a timeout, never after a failed reply', () => {
    inEveryWorld(({ sim }) => {
      for (const e of sim.entries) {
        for (const [i, st] of e.after.steps.entries()) {
          const before = e.before?.steps[i]?.compensationResendOf;
          if (st.compensationResendOf !== undefined && st.compensationResendOf !== before) {
            assert.ok(e.input.type === 'timer' && e.input.timer.kind === 'step-timeout' && e.input.timer.action === 'compensate', `resend marked on ${JSON.stringify(e.input)}`);
          }
          if (e.input.type === 'reply' && e.input.reply.action === 'compensate' && e.input.reply.outcome === 'failed' && e.effects.length > 0 && st.name === e.input.reply.step) {
            assert.equal(st.compensationResendOf, undefined, 'a failed reply leaves a resend marked');
          }
        }
      }
    });
  });

  it('compensates only commanded steps, in strict reverse order, attempts 1, 2, … once each', () => {
    inEveryWorld(({ doneSteps, compSeq }) => {
      const compSteps: string[] = [];
      for (const c of compSeq) {
        assert.ok(doneSteps.has(c.command.step), `compensation of ${c.command.step}, never commanded`);
        if (compSteps.at(-1) !== c.command.step) compSteps.push(c.command.step);
      }
      for (let i = 1; i < compSteps.length; i++) assert.ok(stepIndex(compSteps[i]!) < stepIndex(compSteps[i - 1]!), `compensation order ${compSteps}`);
      for (const s of compSteps) {
        const attempts = compSeq.filter((c) => c.command.step === s).map((c) => c.command.attempt);
        assert.deepEqual(attempts, attempts.map((_, i) => i + 1));
      }
    });
  });

  it("tries a step's action 1, 2, … in order, never past its policy's attempts", () => {
    inEveryWorld(({ d, cmds }) => {
      for (const [i, step] of d.steps.entries()) {
        const attempts = cmds.filter((c) => c.command.action === 'do' && c.command.step === `s${i}`).map((c) => c.command.attempt);
        assert.deepEqual(attempts, attempts.map((_, k) => k + 1));
        assert.ok(attempts.length <= step.retry.attempts, `${attempts.length} attempts of s${i}, policy ${step.retry.attempts}`);
      }
    });
  });

  it("counts only the latest attempt's first reply or timeout, or an earlier attempt's success; other stale and repeated ones are no-ops", () => {
    inEveryWorld(({ sim }) => {
      const latest = new Map<string, number>();
      const consumed = new Set<string>();
      for (const e of sim.entries) {
        const inp = e.input;
        const key = inp.type === 'reply' ? inp.reply : inp.type === 'timer' && inp.timer.kind !== 'deadline' ? inp.timer : undefined;
        if (e.effects.length > 0 && key) {
          const last = latest.get(`${key.step}.${key.action}`);
          if (inp.type === 'timer' && inp.timer.kind !== 'step-timeout') assert.equal(key.attempt, (last ?? 0) + 1, 'retry of a non-latest attempt');
          else {
            const lateSuccess = inp.type === 'reply' && inp.reply.outcome === 'succeeded' && key.attempt !== undefined && last !== undefined && key.attempt < last;
            // The answer to the command a timed-out compensation keeps repeating is the current attempt's.
            const resent = inp.type === 'reply' && key.action === 'compensate' && e.before?.steps.find((s) => s.name === key.step)?.compensationResendOf === key.attempt;
            if (!lateSuccess && !resent) assert.equal(key.attempt, last, `effective input for a stale attempt: ${JSON.stringify(key)}`);
            // Once per attempt for a timeout and for each outcome of a reply (an attempt may time out or fail, then a
            // redelivery of it succeed late), and one success per (step, action) at most.
            const id = `${inp.type === 'reply' ? inp.reply.outcome : 'timeout'}.${key.step}.${key.action}.${key.attempt}`;
            assert.ok(!consumed.has(id), `second effective ${inp.type} for ${id}`);
            consumed.add(id);
            if (inp.type === 'reply' && inp.reply.outcome === 'succeeded') {
              const success = `success.${key.step}.${key.action}`;
              assert.ok(!consumed.has(success), `second effective success for ${key.step}.${key.action}`);
              consumed.add(success);
            }
          }
        }
        for (const c of e.effects) if (c.type === 'command') latest.set(`${c.command.step}.${c.command.action}`, c.command.attempt);
      }
    });
  });

  it('reaches exactly one terminal phase once and keeps it; ignored inputs change nothing; versions grow by one', () => {
    inEveryWorld(({ sim, all }) => {
      assert.ok(terminal(sim.final), `ended in ${sim.final.phase}`);
      const endedAt = sim.entries.findIndex((e) => terminal(e.after));
      assert.equal(all.filter((e) => e.type === 'ended').length, 1);
      for (const e of sim.entries.slice(endedAt + 1)) {
        assert.equal(e.effects.length, 0);
        assert.equal(e.after, e.before);
      }
      for (const e of sim.entries) {
        if (e.effects.length === 0) assert.equal(e.after, e.before);
        else assert.equal(e.after.version, (e.before?.version ?? 0) + 1);
      }
      assert.equal(all.filter((e) => e.type === 'event' && ['succeeded', 'compensated', 'failed'].includes(e.event)).length, 1);
    });
  });

  it('ends Succeeded iff every step succeeded; Compensated and Failed undo every completed step they can', () => {
    inEveryWorld(({ d, sim, doneSteps, compSeq }) => {
      const final = sim.final;
      assert.equal(final.phase === 'Succeeded', final.steps.every((s) => s.status === 'Succeeded'));
      if (final.phase === 'Succeeded') assert.equal(compSeq.length, 0);
      if (final.phase === 'Compensated') {
        for (const [i, s] of final.steps.entries()) {
          if (d.steps[i]!.compensation && doneSteps.has(s.name) && s.status !== 'Failed') assert.equal(s.status, 'Compensated', `${s.name} not compensated`);
          if (!doneSteps.has(s.name)) assert.equal(s.status, 'Skipped');
        }
      }
      if (final.phase === 'Failed') {
        // Failed means some compensation gave up; every other completed step was still undone.
        assert.ok(final.steps.some((s) => s.status === 'CompensationFailed'));
        for (const [i, s] of final.steps.entries()) {
          if (d.steps[i]!.compensation && doneSteps.has(s.name) && s.status !== 'Failed') assert.ok(['Compensated', 'CompensationFailed'].includes(s.status), `${s.name} left ${s.status}`);
        }
      }
    });
  });
});

describe('transition: properties', () => {
  it('keeps its durable timers exact: the live ones issued so far, at least one while not terminal', () => {
    fc.assert(
      fc.property(arbWorld, ({ spec, script }) => {
        const d = def(spec);
        const sim = simulate(d, script, { type: 'start', runId: 'r1', origin: 'k8s', input: {} });
        const issued: TimerPayload[] = [];
        for (const e of sim.entries) {
          for (const fx of e.effects) if (fx.type === 'timer') issued.push(fx.timer);
          const key = (t: TimerPayload) => timerId(t);
          const live = issued.filter((t) => timerIsLive(e.after, t)).map(key).sort();
          assert.deepEqual([...new Set((e.after.timers ?? []).map(key))].sort(), [...new Set(live)].sort(), 'the stored timers are the live ones');
          // The record alone can always wake the run: it never waits on a message only.
          if (!terminal(e.after)) assert.ok((e.after.timers ?? []).length > 0, `a ${e.after.phase} run without a timer`);
          else assert.deepEqual(e.after.timers ?? [], []);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never changes the run it is given (it works on its own copy)', () => {
    const deepFreeze = <T>(o: T): T => {
      if (o && typeof o === 'object' && !Object.isFrozen(o)) {
        Object.freeze(o);
        for (const v of Object.values(o)) deepFreeze(v);
      }
      return o;
    };
    fc.assert(
      fc.property(arbWorld, ({ spec, script }) => {
        const d = def(spec);
        const sim = simulate(d, script, { type: 'start', runId: 'r1', origin: 'k8s', input: { x: 1 } });
        for (const e of sim.entries) {
          if (!e.before) continue;
          const frozen = deepFreeze(structuredClone(e.before));
          const again = transition(frozen, d, e.input, e.after.updatedAtMs);
          assert.deepEqual(again.run, e.effects.length > 0 ? e.after : e.before);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic: the same inputs give the same states and effects', () => {
    fc.assert(
      fc.property(arbWorld, ({ spec, script }) => {
        const d = def(spec);
        const start: EngineInput = { type: 'start', runId: 'r1', origin: 'order', input: {} };
        assert.deepEqual(simulate(d, script, start), simulate(d, script, start));
      }),
      { numRuns: 50 },
    );
  });
});
