import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { orderFulfillmentDefinition } from '@sagamesh/contracts';
import type { RunState } from '../src/core/types.ts';
import type { IndexEntry } from '../src/engine/run-index.ts';
import type { RunRecord } from '../src/engine/store.ts';
import { Sweeper } from '../src/engine/sweeper.ts';
import { capturingLogger } from './support/log.ts';
import { def, Driver, T0 } from './support/sim.ts';

const GRACE = 500;
const NOW = T0 + 10_000;

const d = new Driver(def(orderFulfillmentDefinition));
d.start();
const base = d.state;

/** A run as the index saw it and as KV holds it now (`stored: null`: gone). */
interface Run {
  indexed: { version: number; updatedAtMs: number };
  stored?: Partial<RunState> | null;
  published?: number;
}

function rig(runs: Record<string, Run>, opts: { failPublish?: string[]; alreadyPublished?: string[] } = {}) {
  const { log, lines } = capturingLogger();
  const reads: string[] = [];
  const kept: string[] = [];
  const published: string[] = [];
  const locked = new Set<string>();
  const record = (runId: string): RunRecord | undefined => {
    const r = runs[runId]!;
    if (r.stored === null) return undefined;
    return { revision: 7, stored: { state: { ...base, runId, ...r.indexed, ...r.stored }, outbox: [] } };
  };
  const sweeper = new Sweeper({
    runs: () => Object.entries(runs).map(([runId, r]): [string, IndexEntry] => [runId, { definitionKey: base.definitionKey, deadlineAt: base.deadlineAt, ...r.indexed }]),
    publishedVersion: (runId) => runs[runId]!.published,
    store: {
      async exclusive(runId, fn) {
        locked.add(runId);
        try {
          return await fn();
        } finally {
          locked.delete(runId);
        }
      },
      async read(runId) {
        assert.ok(locked.has(runId), `${runId} read outside its lock`);
        reads.push(runId);
        return record(runId);
      },
      keep: (runId) => void kept.push(runId),
    },
    async ensurePublished(runId, rec) {
      assert.ok(locked.has(runId), `${runId} published outside its lock`);
      assert.deepEqual(rec, record(runId));
      if (opts.failPublish?.includes(runId)) throw new Error('NATS is down');
      if (opts.alreadyPublished?.includes(runId)) return false;
      published.push(runId);
      return true;
    },
    graceMs: GRACE,
    now: () => NOW,
    log,
  });
  return { sweeper, reads, kept, published, lines };
}

const old = (version: number) => ({ version, updatedAtMs: NOW - GRACE });

describe('sweeper: outboxes nobody published', () => {
  it('flushes the runs untouched for the grace period whose indexed version this replica has not published', async () => {
    const r = rig({
      untouched: { indexed: old(3) },
      'published-before': { indexed: old(3), published: 2 },
      'published-already': { indexed: old(3), published: 3 },
      recent: { indexed: { version: 3, updatedAtMs: NOW - GRACE + 1 } },
      'moved-on': { indexed: old(3), stored: { version: 4, updatedAtMs: NOW - 10 } },
      gone: { indexed: old(3), stored: null },
      'published-meanwhile': { indexed: old(3) },
    }, { alreadyPublished: ['published-meanwhile'] });
    assert.equal(await r.sweeper.sweep(), 2);
    assert.deepEqual(r.reads.sort(), ['gone', 'moved-on', 'published-before', 'published-meanwhile', 'untouched']);
    assert.deepEqual(r.kept.sort(), ['published-before', 'published-meanwhile', 'untouched']);
    assert.deepEqual(r.published.sort(), ['published-before', 'untouched']);
  });

  it('a run it cannot flush is logged and left for the next sweep; the others are flushed', async () => {
    const r = rig({ a: { indexed: old(1) }, b: { indexed: old(1) }, c: { indexed: old(1) } }, { failPublish: ['b'] });
    assert.equal(await r.sweeper.sweep(1), 2);
    assert.deepEqual(r.published, ['a', 'c']);
    const warns = r.lines.filter((l) => l.level === 'warn');
    assert.deepEqual(warns.map((l) => [l.runId, l.msg]), [['b', 'sweep could not publish an outbox; will try again']]);
  });

  it('a sweep while one is running does nothing', async () => {
    const r = rig({ a: { indexed: old(1) } });
    const [first, second] = await Promise.all([r.sweeper.sweep(), r.sweeper.sweep()]);
    assert.deepEqual([first, second], [1, 0]);
    assert.equal(await r.sweeper.sweep(), 1, 'the next sweep runs again');
  });
});
