import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunEventRecord, RunView, StepState } from '@sagamesh/contracts';
import { buildTimeline } from '../src/model/timeline.ts';

const t = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, 0, s * 100)).toISOString();
const step = (name: string, over: Partial<StepState>): StepState => ({ name, status: 'Pending', attempts: 0, compensationAttempts: 0, ...over });
const view = (over: Partial<RunView>): RunView => ({
  runId: 'ord-1', definitionKey: 'builtin.order-fulfillment', revision: 'r1', origin: 'order', phase: 'Running', steps: [], startedAt: t(0), version: 1, ...over,
});

describe('a run as a timeline', () => {
  it('draws the compensations after the failure that caused them, in reverse step order, with their durations', () => {
    const run = view({
      phase: 'Compensated',
      error: { code: 'step_failed', message: 'step create-shipment failed: no carrier' },
      steps: [
        step('reserve-inventory', { status: 'Compensated', attempts: 1, startedAt: t(1), endedAt: t(2), compensationAttempts: 1, compensationStartedAt: t(8), compensatedAt: t(9) }),
        step('charge-payment', { status: 'Compensated', attempts: 1, startedAt: t(2), endedAt: t(4), compensationAttempts: 2, compensationStartedAt: t(6), compensatedAt: t(8) }),
        step('create-shipment', { status: 'Failed', attempts: 1, startedAt: t(4), endedAt: t(5), error: { code: 'injected', message: 'no carrier' } }),
      ],
    });
    const events: RunEventRecord[] = [
      { event: 'step_failed', step: 'create-shipment', message: 'no carrier', at: t(5), version: 7 },
      { event: 'step_retried', step: 'charge-payment', message: 'compensation attempt 1 failed: busy; attempt 2 in 100ms', at: t(7), version: 9 },
    ];
    const tl = buildTimeline(run, events);
    assert.deepEqual(tl.entries.map((e) => `${e.kind} ${e.step} ${e.outcome}`), [
      'action reserve-inventory succeeded',
      'action charge-payment succeeded',
      'action create-shipment failed',
      'compensation charge-payment compensated',
      'compensation reserve-inventory compensated',
    ]);
    assert.equal(tl.compensationCause, 'step create-shipment failed: no carrier');
    const failed = tl.entries[2]!;
    assert.equal(failed.error, 'no carrier');
    assert.deepEqual(failed.failures.map((f) => f.message), ['no carrier']);
    const refund = tl.entries[3]!;
    assert.equal(refund.durationMs, 200);
    assert.equal(refund.attempts, 2);
    assert.deepEqual(refund.failures.map((f) => f.message), ['compensation attempt 1 failed: busy; attempt 2 in 100ms'], 'a compensation retry belongs to the undo row');
    assert.deepEqual(tl.entries[1]!.failures, [], 'not to the action row');
  });

  it('a step that timed out and was compensated shows as timed out, then undone; a run that succeeds has no compensation', () => {
    const run = view({
      phase: 'Compensating',
      error: { code: 'step_timed_out', message: 'step charge-payment timed out 3 time(s)' },
      steps: [step('charge-payment', { status: 'Compensating', attempts: 3, startedAt: t(1), endedAt: t(30), error: { code: 'timeout', message: 'attempt 3 timed out after 2000ms' }, compensationAttempts: 1, compensationStartedAt: t(31) })],
    });
    const tl = buildTimeline(run, []);
    assert.deepEqual(tl.entries.map((e) => `${e.kind} ${e.outcome}`), ['action timed out', 'compensation compensating']);
    assert.equal(tl.entries[0]!.error, 'attempt 3 timed out after 2000ms');
    assert.equal(tl.entries[1]!.endedAt, undefined);

    const ok = buildTimeline(view({ phase: 'Succeeded', steps: [step('a', { status: 'Succeeded', attempts: 1, startedAt: t(1), endedAt: t(3) })] }), []);
    assert.deepEqual(ok.entries.map((e) => e.kind), ['action']);
    assert.equal(ok.entries[0]!.durationMs, 200);
    assert.equal(ok.compensationCause, undefined);
  });
});
