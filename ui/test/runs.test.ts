import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SagaPhases, type RunSummary } from '@sagamesh/contracts';
import { definitionsOf, LIST_PHASES, pageOf, phaseCounts, RunModel } from '../src/model/runs.ts';

const run = (i: number, over: Partial<RunSummary> = {}): RunSummary => ({
  runId: `r-${String(i).padStart(3, '0')}`,
  origin: 'order',
  definitionKey: 'builtin.order-fulfillment',
  phase: 'Running',
  startedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
  version: 1,
  ...over,
});

describe('the live list model', () => {
  it('filters on the phases the engine has, every one of them', () => {
    assert.deepEqual([...LIST_PHASES].sort(), [...SagaPhases].sort());
  });

  it('lists newest first, filtered by phase, origin and definition, one page at a time', () => {
    const runs = [
      ...Array.from({ length: 30 }, (_, i) => run(i, { phase: i % 3 === 0 ? 'Compensated' : 'Succeeded' })),
      run(40, { origin: 'k8s', definitionKey: 'k8s.default.order', phase: 'Running' }),
    ];
    const all = pageOf(runs, { phases: [] }, 0, 10);
    assert.equal(all.total, 31);
    assert.equal(all.pages, 4);
    assert.deepEqual(all.rows.slice(0, 2).map((r) => r.runId), ['r-040', 'r-029']);

    const compensated = pageOf(runs, { phases: ['Compensated'] }, 0, 100);
    assert.equal(compensated.total, 10);
    assert.ok(compensated.rows.every((r) => r.phase === 'Compensated'));
    assert.deepEqual(pageOf(runs, { phases: [], origin: 'k8s' }, 0, 10).rows.map((r) => r.runId), ['r-040']);
    assert.equal(pageOf(runs, { phases: ['Running', 'Compensated'], definition: 'builtin.order-fulfillment' }, 0, 100).total, 10);
    // A page past the end shows the last one.
    assert.equal(pageOf(runs, { phases: [] }, 99, 10).page, 3);
    assert.deepEqual(definitionsOf(runs), ['builtin.order-fulfillment', 'k8s.default.order']);
    assert.equal(phaseCounts(runs).Succeeded, 20);
  });

  it('keeps each run at its highest version, whatever order snapshot and deltas come in', () => {
    const m = new RunModel();
    m.snapshot([run(1, { version: 3, phase: 'Running' })], 100);
    m.apply([run(1, { version: 2, phase: 'Pending' }), run(2)]);
    assert.equal(m.get('r-001')?.phase, 'Running', 'an older version is ignored');
    m.apply([run(1, { version: 9, phase: 'Succeeded' })]);
    assert.equal(m.get('r-001')?.phase, 'Succeeded');
    assert.equal(m.size, 2);
    m.snapshot([run(3)], 100);
    assert.deepEqual(m.all().map((r) => r.runId), ['r-003'], 'a snapshot replaces everything');
  });

  it('holds no more runs than the server does: the oldest leave', () => {
    const m = new RunModel();
    m.snapshot([], 3);
    m.apply([run(5), run(1), run(3), run(4)]);
    assert.deepEqual(m.all().map((r) => r.runId).sort(), ['r-003', 'r-004', 'r-005']);
  });
});
