import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SAGA_FINALIZER, SagaPhases, StepStatuses, isTerminalPhase, type RunView, type SagaObject, type SagaPhase, type SagaStatus, type StepState } from '@sagamesh/contracts';
import { setCondition } from '../src/conditions.ts';
import { decideDefinition, decideSaga, type SagaAction, type SagaObservation } from '../src/decision.ts';
import { sagaStatusFromRun } from '../src/status.ts';
import { type EventSpec, transitionEvents } from '../src/transition-events.ts';
import { NOW, UID, definition, run, saga, step } from './fixtures.ts';

const types = (actions: SagaAction[]) => actions.map((a) => a.type);
const statusOf = (actions: SagaAction[]) => actions.find((a): a is Extract<SagaAction, { type: 'updateStatus' }> => a.type === 'updateStatus')?.status;
const eventsOf = (actions: SagaAction[]) => actions.flatMap((a) => (a.type === 'event' ? [a.event] : []));
const cond = (s: SagaStatus | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

/** What the controller does with the actions, minus the engine: the object as it is after them. */
function applyToSaga(s: SagaObject, actions: SagaAction[]): SagaObject {
  let next = structuredClone(s);
  for (const a of actions) {
    if (a.type === 'updateStatus') next = { ...next, status: a.status };
    if (a.type === 'addFinalizer') next.metadata.finalizers = [...(next.metadata.finalizers ?? []), SAGA_FINALIZER];
    if (a.type === 'removeFinalizer') next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== SAGA_FINALIZER);
  }
  return next;
}

describe('decideSaga: starting', () => {
  it('a new Saga whose definition is registered gets the finalizer, then its run is started with its uid, key, revision, input and faults', () => {
    const actions = decideSaga({ saga: saga({ faults: true }), definition: definition(), run: undefined, now: NOW });
    assert.deepEqual(types(actions), ['addFinalizer', 'start']);
    const start = actions[1] as Extract<SagaAction, { type: 'start' }>;
    assert.deepEqual(start.request, {
      runId: UID,
      definitionKey: 'k8s.shop.order-fulfillment',
      revision: 'rev-2',
      origin: 'k8s',
      input: saga().spec.input,
      faults: [{ target: 'payments.charge', failureRate: 1, latencyMs: 0, crashAfterCommit: false }],
    });
  });

  it('a Saga that already has the finalizer is only started', () => {
    assert.deepEqual(types(decideSaga({ saga: saga({ finalizer: true }), definition: definition(), run: undefined, now: NOW })), ['start']);
  });

  it('a Saga restarted after its run vanished keeps the revision it was pinned to', () => {
    const s = saga({ finalizer: true, status: { phase: 'Running', runId: UID, definitionRevision: 'rev-1' } });
    const start = decideSaga({ saga: s, definition: definition(), run: undefined, now: NOW })[0] as Extract<SagaAction, { type: 'start' }>;
    assert.equal(start.request.revision, 'rev-1');
  });

  for (const [what, def, text] of [
    ['there is no SagaDefinition', undefined, 'there is none in namespace shop'],
    ['the definition is not registered yet', definition({ ready: 'none' }), 'to be registered with the engine'],
    ['the definition status is for an older generation', definition({ stale: true }), 'to be registered with the engine'],
    ['the definition is invalid', definition({ ready: 'False' }), 'is not ready (Invalid): step names must be unique'],
  ] as const) {
    it(`waits, Pending with a message, when ${what}`, () => {
      const actions = decideSaga({ saga: saga(), definition: def, run: undefined, now: NOW });
      assert.deepEqual(types(actions), ['updateStatus']);
      const status = statusOf(actions)!;
      assert.equal(status.phase, 'Pending');
      assert.match(status.message!, new RegExp(text.replace(/[()]/g, '\\$&')));
      assert.equal(cond(status, 'Completed')?.status, 'False');
      assert.equal(cond(status, 'Completed')?.reason, 'Pending');
      assert.equal(cond(status, 'Succeeded')?.status, 'Unknown');
      // Asked again with that status in place: nothing to do.
      assert.deepEqual(decideSaga({ saga: applyToSaga(saga(), actions), definition: def, run: undefined, now: '2025-01-01T01:00:00Z' }), []);
    });
  }

  it('never starts a Saga that ended (e.g. whose start was refused), even when the engine has no run', () => {
    const s = saga({ status: { phase: 'Failed', message: 'refused' } });
    assert.deepEqual(decideSaga({ saga: s, definition: definition(), run: undefined, now: NOW }), []);
    assert.deepEqual(types(decideSaga({ saga: saga({ finalizer: true, status: { phase: 'Succeeded' } }), definition: definition(), run: undefined, now: NOW })), ['removeFinalizer']);
  });

  it('a start the engine refused ends the Saga Failed (Completed=True, reason Failed), with a Warning Event, and drops the finalizer', () => {
    const actions = decideSaga({ saga: saga({ finalizer: true }), definition: definition(), run: undefined, startRefused: { code: 'invalid_request', message: 'input: items is required' }, now: NOW });
    assert.deepEqual(types(actions), ['updateStatus', 'event', 'removeFinalizer']);
    const status = statusOf(actions)!;
    assert.equal(status.phase, 'Failed');
    assert.equal(cond(status, 'Completed')?.status, 'True');
    assert.equal(cond(status, 'Completed')?.reason, 'Failed');
    assert.equal(cond(status, 'Succeeded')?.status, 'False');
    assert.match(status.message!, /refused to start the run: input: items is required/);
    assert.equal(eventsOf(actions)[0]?.reason, 'StartRefused');
  });
});

describe('decideSaga: bounds on input', () => {
  it('an input too large to send is refused without asking the engine: Failed with the reason, no start', () => {
    const big = saga({ finalizer: true });
    big.spec.input = { blob: 'x'.repeat(70_000) };
    const actions = decideSaga({ saga: big, definition: definition(), run: undefined, now: NOW });
    assert.ok(!types(actions).includes('start'));
    assert.deepEqual(types(actions), ['updateStatus', 'event', 'removeFinalizer']);
    const status = statusOf(actions)!;
    assert.equal(status.phase, 'Failed');
    assert.match(status.message!, /input is 7\d{4} bytes of JSON; at most 65536/);
    const ok = saga({ finalizer: true });
    ok.spec.input = { blob: 'x'.repeat(60_000) };
    assert.ok(types(decideSaga({ saga: ok, definition: definition(), run: undefined, now: NOW })).includes('start'), 'an input within the bound starts');
  });
});

describe('decideSaga: mirroring the run', () => {
  it('a running run is mirrored into the status with its steps, and a missing finalizer is added first', () => {
    const actions = decideSaga({ saga: saga(), definition: definition(), run: run('Running', ['Succeeded', 'Running']), now: NOW });
    assert.deepEqual(types(actions).slice(0, 2), ['addFinalizer', 'updateStatus']);
    const status = statusOf(actions)!;
    assert.equal(status.phase, 'Running');
    assert.equal(status.currentStep, 'charge-payment');
    assert.equal(status.runId, UID);
    assert.equal(status.definitionRevision, 'rev-2');
    assert.equal(status.observedGeneration, 1);
    assert.deepEqual(status.steps!.map((s) => [s.name, s.status, s.attempts]), [
      ['reserve-inventory', 'Succeeded', 1],
      ['charge-payment', 'Running', 1],
      ['create-shipment', 'Pending', 0],
    ]);
    assert.deepEqual(eventsOf(actions).map((e) => e.reason), ['Started', 'StepRunning', 'StepSucceeded', 'StepRunning']);
  });

  it('a Succeeded run: Completed=True and Succeeded=True (reason Succeeded), and the finalizer goes', () => {
    const actions = decideSaga({ saga: saga({ finalizer: true }), definition: definition(), run: run('Succeeded', ['Succeeded', 'Succeeded', 'Succeeded']), now: NOW });
    assert.deepEqual(types(actions).at(-1), 'removeFinalizer');
    const status = statusOf(actions)!;
    assert.equal(status.phase, 'Succeeded');
    assert.equal(status.currentStep, undefined);
    for (const type of ['Completed', 'Succeeded']) {
      assert.equal(cond(status, type)?.status, 'True');
      assert.equal(cond(status, type)?.reason, 'Succeeded');
      assert.equal(cond(status, type)?.observedGeneration, 1);
      assert.equal(cond(status, type)?.lastTransitionTime, NOW);
    }
  });

  it('a Compensated run: Completed=True, Succeeded=False, both with reason Compensated; Events tell the compensation in order', () => {
    const prev = sagaStatusFromRun(undefined, run('Running', ['Succeeded', 'Running']), 1, '2025-01-01T00:00:01Z');
    const actions = decideSaga({ saga: saga({ finalizer: true, status: prev }), definition: definition(), run: run('Compensated', ['Compensated', 'Failed']), now: NOW });
    const status = statusOf(actions)!;
    assert.equal(cond(status, 'Completed')?.status, 'True');
    assert.equal(cond(status, 'Completed')?.reason, 'Compensated');
    assert.equal(cond(status, 'Succeeded')?.status, 'False');
    assert.equal(cond(status, 'Succeeded')?.reason, 'Compensated');
    assert.deepEqual(
      eventsOf(actions).map((e) => `${e.reason}:${e.type}`),
      ['StepFailed:Warning', 'Compensating:Warning', 'StepCompensating:Normal', 'StepCompensated:Normal', 'Compensated:Warning'],
    );
    assert.match(eventsOf(actions).find((e) => e.reason === 'StepFailed')!.note, /charge-payment failed .*injected failure/);
  });

  it('nothing changed: no write, no Event', () => {
    const r = run('Running', ['Running']);
    const s = saga({ finalizer: true, status: sagaStatusFromRun(undefined, r, 1, '2025-01-01T00:00:01Z') });
    assert.deepEqual(decideSaga({ saga: s, definition: definition(), run: r, now: NOW }), []);
  });

  it('a condition keeps its lastTransitionTime while its status stays', () => {
    const first = setCondition(undefined, { type: 'Completed', status: 'False', reason: 'Running', message: 'a', observedGeneration: 1 }, 't1');
    const second = setCondition(first, { type: 'Completed', status: 'False', reason: 'Compensating', message: 'b', observedGeneration: 1 }, 't2');
    const third = setCondition(second, { type: 'Completed', status: 'True', reason: 'Compensated', message: 'c', observedGeneration: 1 }, 't3');
    assert.deepEqual([first, second, third].map((c) => c[0]!.lastTransitionTime), ['t1', 't1', 't3']);
  });
});

describe('decideSaga: deleting', () => {
  it('a running Saga being deleted has its run cancelled (once per reconcile), and keeps its finalizer', () => {
    const r = run('Running', ['Succeeded', 'Running']);
    const s = saga({ finalizer: true, deleting: true, status: sagaStatusFromRun(undefined, r, 1, NOW) });
    const actions = decideSaga({ saga: s, definition: definition(), run: r, now: NOW });
    assert.deepEqual(types(actions), ['event', 'cancel']);
    assert.equal(eventsOf(actions)[0]!.reason, 'Cancelling');
    assert.deepEqual(decideSaga({ saga: s, definition: definition(), run: r, cancelSent: true, now: NOW }), []);
  });

  it('while it compensates, the Saga waits (status mirrored, finalizer kept); once Compensated the finalizer goes', () => {
    const s = saga({ finalizer: true, deleting: true });
    const compensating = decideSaga({ saga: s, definition: definition(), run: run('Compensating', ['Compensating', 'Succeeded']), now: NOW });
    assert.ok(!types(compensating).includes('removeFinalizer') && !types(compensating).includes('cancel'));
    const done = decideSaga({ saga: s, definition: definition(), run: run('Compensated', ['Compensated', 'Compensated']), now: NOW });
    assert.equal(types(done).at(-1), 'removeFinalizer');
  });

  it('a Saga deleted before its run started just loses its finalizer', () => {
    assert.deepEqual(types(decideSaga({ saga: saga({ finalizer: true, deleting: true }), definition: definition(), run: undefined, now: NOW })), ['removeFinalizer']);
    assert.deepEqual(decideSaga({ saga: saga({ deleting: true }), definition: definition(), run: undefined, now: NOW }), []);
  });
});

// ---- properties over any observation ----

const stepStates = fc.constantFrom(...StepStatuses);
const arbRun: fc.Arbitrary<RunView | undefined> = fc.option(
  fc.record({ phase: fc.constantFrom(...SagaPhases), statuses: fc.array(stepStates, { minLength: 3, maxLength: 3 }) }).map(({ phase, statuses }) => run(phase, statuses)),
  { nil: undefined },
);
const arbObservation: fc.Arbitrary<SagaObservation> = fc
  .record({
    finalizer: fc.boolean(),
    deleting: fc.boolean(),
    prevPhase: fc.option(fc.constantFrom(...SagaPhases), { nil: undefined }),
    def: fc.constantFrom('ready', 'none', 'invalid', 'stale', 'missing'),
    run: arbRun,
    refused: fc.boolean(),
    generation: fc.integer({ min: 1, max: 5 }),
  })
  .map((o) => ({
    saga: saga({ finalizer: o.finalizer, deleting: o.deleting, generation: o.generation, ...(o.prevPhase ? { status: { phase: o.prevPhase } } : {}) }),
    definition: o.def === 'missing' ? undefined : definition(o.def === 'ready' ? {} : o.def === 'invalid' ? { ready: 'False' } : o.def === 'stale' ? { stale: true } : { ready: 'none' }),
    run: o.run,
    ...(o.refused && !o.run ? { startRefused: { code: 'invalid_request', message: 'bad input' } } : {}),
    now: NOW,
  }));

describe('decideSaga: properties', () => {
  it('start and cancel come last, at most one of them, and never start a Saga being deleted, with a run, or that ended', () => {
    fc.assert(
      fc.property(arbObservation, (o) => {
        const actions = decideSaga(o);
        const io = actions.filter((a) => a.type === 'start' || a.type === 'cancel');
        assert.ok(io.length <= 1);
        if (io.length === 1) assert.equal(actions.at(-1), io[0]);
        if (types(actions).includes('start')) {
          assert.ok(!o.saga.metadata.deletionTimestamp && !o.run && !o.startRefused);
          assert.ok(!(o.saga.status?.phase && isTerminalPhase(o.saga.status.phase)));
          assert.ok(o.saga.metadata.finalizers?.includes(SAGA_FINALIZER) || types(actions)[0] === 'addFinalizer', 'a run never starts unprotected');
        }
        if (types(actions).includes('cancel')) assert.ok(o.saga.metadata.deletionTimestamp && o.run && !isTerminalPhase(o.run.phase));
        if (o.saga.metadata.deletionTimestamp) assert.ok(!types(actions).includes('addFinalizer'));
      }),
      { numRuns: 2000 },
    );
  });

  it('the finalizer goes only when nothing is left to compensate: no run, or a run that ended', () => {
    fc.assert(
      fc.property(arbObservation, (o) => {
        if (types(decideSaga(o)).includes('removeFinalizer')) assert.ok(!o.run || isTerminalPhase(o.run.phase));
      }),
      { numRuns: 2000 },
    );
  });

  it('conditions always agree with the phase: Completed=True iff terminal, Succeeded=True iff Succeeded, reason = phase, observedGeneration = generation', () => {
    fc.assert(
      fc.property(arbObservation, (o) => {
        const status = statusOf(decideSaga(o));
        if (!status) return;
        const phase = status.phase as SagaPhase;
        assert.equal(cond(status, 'Completed')?.status, isTerminalPhase(phase) ? 'True' : 'False');
        assert.equal(cond(status, 'Succeeded')?.status, phase === 'Succeeded' ? 'True' : isTerminalPhase(phase) ? 'False' : 'Unknown');
        assert.equal(cond(status, 'Completed')?.reason, phase);
        assert.equal(cond(status, 'Succeeded')?.reason, phase);
        assert.equal(status.observedGeneration, o.saga.metadata.generation);
        assert.ok(status.conditions!.every((c) => c.observedGeneration === o.saga.metadata.generation));
      }),
      { numRuns: 2000 },
    );
  });

  it('is idempotent: once its writes are applied, the same observation asks for nothing more', () => {
    fc.assert(
      fc.property(arbObservation, (o) => {
        const actions = decideSaga(o);
        if (types(actions).includes('start')) return; // the next observation has a run
        const after = decideSaga({ ...o, saga: applyToSaga(o.saga, actions), cancelSent: true, now: '2025-01-01T02:00:00Z' });
        assert.deepEqual(after, []);
      }),
      { numRuns: 2000 },
    );
  });

  it('Event keys within one reconcile are distinct', () => {
    fc.assert(
      fc.property(arbObservation, (o) => {
        const keys = eventsOf(decideSaga(o)).map((e) => e.key);
        assert.equal(new Set(keys).size, keys.length);
      }),
    );
  });
});

/** A run's observable history: steps in order; step `failAt` fails; compensations go back in reverse; a compensation may give up. */
function history(n: number, failAt: number | undefined, compensationGivesUp: boolean): RunView[] {
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  const steps: StepState[] = names.map((name) => step(name, 'Pending'));
  const views: RunView[] = [];
  let version = 0;
  const snap = (phase: SagaPhase, current?: string) =>
    views.push({ runId: UID, definitionKey: 'k8s.shop.d', revision: 'r', origin: 'k8s', phase, ...(current ? { currentStep: current } : {}), steps: structuredClone(steps), startedAt: NOW, version: version++ });
  const set = (i: number, status: StepState['status']) => {
    const s = steps[i]!;
    steps[i] = step(s.name, status, status === 'Pending' ? 0 : Math.max(1, s.attempts), status.startsWith('Compensat') ? Math.max(1, s.compensationAttempts) : s.compensationAttempts);
  };
  snap('Pending');
  const last = failAt ?? n;
  for (let i = 0; i < last; i++) {
    set(i, 'Running');
    snap('Running', names[i]);
    set(i, 'Succeeded');
    snap('Running', names[i + 1]);
  }
  if (failAt === undefined) {
    snap('Succeeded');
    return views;
  }
  set(failAt, 'Running');
  snap('Running', names[failAt]);
  set(failAt, 'Failed');
  snap('Compensating', names[failAt - 1]);
  for (let i = failAt - 1; i >= 0; i--) {
    set(i, 'Compensating');
    snap('Compensating', names[i]);
    if (compensationGivesUp && i === 0) {
      set(i, 'CompensationFailed');
      snap('Failed');
      return views;
    }
    set(i, 'Compensated');
    snap('Compensating', names[i - 1]);
  }
  snap('Compensated');
  return views;
}

/** The Events of a Saga whose status mirrors each of `views` in turn, one reconcile per view. */
function observedOneByOne(views: RunView[]): EventSpec[] {
  let prev: SagaStatus | undefined;
  const events: EventSpec[] = [];
  for (const v of views) {
    const next = sagaStatusFromRun(prev, v, 1, NOW);
    events.push(...transitionEvents(prev, next));
    prev = next;
  }
  return events;
}

describe('transitionEvents', () => {
  it('observing only some of a run\'s states yields no Event that observing all would not, and one for every final state', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((n) =>
          fc.record({ n: fc.constant(n), failAt: fc.option(fc.integer({ min: 0, max: n - 1 }), { nil: undefined }), givesUp: fc.boolean(), seen: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }) }),
        ),
        ({ n, failAt, givesUp, seen }) => {
          const views = history(n, failAt, givesUp && failAt !== undefined && failAt > 0);
          const all = observedOneByOne(views).map((e) => e.key);
          const some = observedOneByOne(views.filter((_, i) => i === views.length - 1 || seen[i])).map((e) => e.key);
          assert.equal(new Set(all).size, all.length, 'each transition once');
          for (const key of some) assert.ok(all.includes(key), `${key} is a transition that happened`);
          const positions = some.map((k) => all.indexOf(k));
          assert.deepEqual(positions, [...positions].sort((a, b) => a - b), 'in the order it happened');
          const final = views.at(-1)!;
          assert.ok(some.includes(`phase.${final.phase}`));
          for (const s of final.steps) if (s.status !== 'Pending') assert.ok(some.some((k) => k.startsWith(`step.${s.name}.${s.status}.`)), `${s.name} ${s.status}`);
          // Where the path to a state is certain (no compensation), nothing is missed either.
          if (final.phase === 'Succeeded') assert.deepEqual([...some].sort(), [...all].sort());
        },
      ),
      { numRuns: 500 },
    );
  });

  it('with the views seen in progress events, one reconcile records every transition, in order, as observing each view would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((n) => fc.record({ n: fc.constant(n), failAt: fc.option(fc.integer({ min: 0, max: n - 1 }), { nil: undefined }), cut: fc.nat() })),
        ({ n, failAt, cut }) => {
          const views = history(n, failAt, false);
          // Observed one by one...
          const each = observedOneByOne(views).map((e) => e.key);
          // ...or: a status at some view, then one reconcile given the later views as history.
          const at = cut % views.length;
          const first = sagaStatusFromRun(undefined, views[at]!, 1, NOW);
          const firstKeys = transitionEvents(undefined, first).map((e) => e.key);
          const s = saga({ finalizer: true, status: first });
          const later = views.slice(at + 1);
          const actions = later.length ? decideSaga({ saga: s, definition: definition(), run: later.at(-1)!, history: later.slice(0, -1).reverse(), now: NOW }) : [];
          const once = [...firstKeys, ...eventsOf(actions).map((e) => e.key)];
          if (at === 0) assert.deepEqual(once, each);
          else for (const k of each.slice(each.indexOf(firstKeys.at(-1)!) + 1)) assert.ok(once.includes(k), `${k} recorded`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compensations are reported in reverse step order', () => {
    const compensated = observedOneByOne(history(3, 2, false)).filter((e) => e.reason === 'StepCompensated');
    assert.deepEqual(compensated.map((e) => e.note.split(' ')[1]), ['s1', 's0']);
  });

  it('a retried step gets a StepRetried Event per new attempt, and a second time-out its own Event', () => {
    const base = sagaStatusFromRun(undefined, run('Running', ['Running']), 1, NOW);
    const timedOut = { ...base, steps: [{ ...base.steps![0]!, status: 'TimedOut' as const }] };
    const retry = { ...base, steps: [{ ...base.steps![0]!, status: 'Running' as const, attempts: 2 }] };
    const timedOutAgain = { ...base, steps: [{ ...base.steps![0]!, status: 'TimedOut' as const, attempts: 2 }] };
    assert.deepEqual(transitionEvents(base, timedOut).map((e) => e.reason), ['StepTimedOut']);
    assert.deepEqual(transitionEvents(timedOut, retry).map((e) => e.reason), ['StepRetried']);
    const again = transitionEvents(retry, timedOutAgain);
    assert.deepEqual(again.map((e) => e.reason), ['StepTimedOut']);
    assert.notEqual(again[0]!.key, transitionEvents(base, timedOut)[0]!.key);
  });
});

describe('decideDefinition', () => {
  const now = NOW;
  it('registers a valid definition, then records Ready=True with the key and revision', () => {
    const def = definition({ ready: 'none' });
    const first = decideDefinition({ definition: def, now });
    assert.deepEqual(first, [{ type: 'define', request: { key: 'k8s.shop.order-fulfillment', spec: def.spec } }]);
    const second = decideDefinition({ definition: def, registered: { key: 'k8s.shop.order-fulfillment', revision: 'abc' }, now });
    assert.deepEqual(second.map((a) => a.type), ['updateStatus', 'event']);
    const status = (second[0] as { status: { revision?: string; stepCount?: number; observedGeneration?: number; conditions?: { status: string; reason: string }[] } }).status;
    assert.equal(status.revision, 'abc');
    assert.equal(status.stepCount, 3);
    assert.equal(status.observedGeneration, 2);
    assert.deepEqual(status.conditions!.map((c) => [c.status, c.reason]), [['True', 'Registered']]);
  });

  it('always re-registers (the engine may have lost it), but writes nothing when the answer is the same', () => {
    const def = definition({ revision: 'abc' });
    def.status!.conditions![0]!.message = 'registered with the engine as k8s.shop.order-fulfillment, revision abc';
    assert.equal(decideDefinition({ definition: def, now })[0]?.type, 'define');
    assert.deepEqual(decideDefinition({ definition: def, registered: { key: 'k8s.shop.order-fulfillment', revision: 'abc' }, now }), []);
  });

  it('an invalid definition is not registered: Ready=False, reason Invalid, with what to fix', () => {
    const def = definition({ ready: 'none' });
    def.spec.steps.push({ ...def.spec.steps[0]!, compensation: { service: 'payments', command: 'unrefund' } });
    const actions = decideDefinition({ definition: def, now });
    assert.deepEqual(actions.map((a) => a.type), ['updateStatus', 'event']);
    const ready = (actions[0] as { status: { conditions?: { status: string; reason: string; message: string }[] } }).status.conditions![0]!;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'Invalid');
    assert.match(ready.message, /step names must be unique: .*reserve-inventory repeats/);
    assert.match(ready.message, /compensation payments\.unrefund is not a known command/);
  });

  it('a definition the engine refuses is Invalid with the engine\'s reason', () => {
    const actions = decideDefinition({ definition: definition({ ready: 'none' }), registered: { refused: { code: 'invalid_request', message: 'deadline too long' } }, now });
    const ready = (actions[0] as { status: { conditions?: { reason: string; message: string }[] } }).status.conditions![0]!;
    assert.equal(ready.reason, 'Invalid');
    assert.match(ready.message, /deadline too long/);
  });
});
