import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { orderFulfillmentDefinition } from '@sagamesh/contracts';
import type { RunState } from '../src/core/types.ts';
import { OWN_WRITES_MAX, RunIndex } from '../src/engine/run-index.ts';
import type { RunRecord } from '../src/engine/store.ts';
import { encodeRun } from '../src/outbox.ts';
import { capturingLogger } from './support/log.ts';
import { def, Driver, T0 } from './support/sim.ts';

const d = new Driver(def(orderFulfillmentDefinition));
d.start();
const base = d.state;
const run = (runId: string, fields: Partial<RunState> = {}): RunState => ({ ...base, runId, ...fields });

/** A KV watch fed by the test. */
class FakeWatch {
  readonly #queue: KvWatchEntry[] = [];
  #wake: (() => void) | undefined;
  #stopped = false;
  push(e: Partial<KvWatchEntry>): void {
    this.#queue.push(e as KvWatchEntry);
    this.#wake?.();
  }
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<KvWatchEntry> {
    for (;;) {
      while (this.#queue.length > 0) yield this.#queue.shift()!;
      if (this.#stopped) return;
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
}

async function rig() {
  const watch = new FakeWatch();
  const { log, lines } = capturingLogger();
  const changes: [string, RunRecord | undefined][] = [];
  const index = new RunIndex({ kv: { watch: async () => watch } as unknown as KV, log, onChange: (runId, record) => void changes.push([runId, record]) });
  await index.start();
  const put = async (revision: number, state: RunState) => {
    watch.push({ key: state.runId, revision, operation: 'PUT', value: new TextEncoder().encode(encodeRun({ state, outbox: [] })) });
    await new Promise((r) => setImmediate(r));
  };
  const del = async (revision: number, runId: string) => {
    watch.push({ key: runId, revision, operation: 'DEL', value: new Uint8Array() });
    await new Promise((r) => setImmediate(r));
  };
  const indexed = () => new Map([...index.entries()].map(([id, e]) => [id, e.version]));
  return { index, watch, changes, lines, put, del, indexed };
}

describe('run index: the watch of saga-runs', () => {
  it('indexes non-terminal runs from the watch and reports them; terminal and deleted runs leave the index', async () => {
    const r = await rig();
    assert.equal(r.index.open(), true);
    await r.put(1, run('a', { version: 1 }));
    await r.put(2, run('b', { version: 1 }));
    assert.deepEqual(r.indexed(), new Map([['a', 1], ['b', 1]]));
    assert.deepEqual(r.changes.map(([id, rec]) => [id, rec?.revision, rec?.stored.state.version]), [['a', 1, 1], ['b', 2, 1]]);

    await r.put(3, run('a', { version: 5, phase: 'Succeeded' }));
    await r.del(4, 'b');
    assert.deepEqual(r.indexed(), new Map());
    assert.deepEqual(r.changes.slice(2).map(([id, rec]) => [id, rec?.stored.state.phase]), [['a', 'Succeeded'], ['b', undefined]]);

    await r.index.stop();
    assert.equal(r.index.open(), false);
  });

  it("skips the echo of this replica's own writes (and anything older), not what other writers wrote after", async () => {
    const r = await rig();
    r.index.wrote(10, run('a', { version: 4 }));
    assert.deepEqual(r.indexed(), new Map([['a', 4]]));
    await r.put(9, run('a', { version: 3 }));
    await r.put(10, run('a', { version: 4 }));
    assert.equal(r.changes.length, 0);
    await r.put(11, run('a', { version: 5 }));
    assert.deepEqual(r.changes.map(([id, rec]) => [id, rec?.revision]), [['a', 11]]);
    assert.deepEqual(r.indexed(), new Map([['a', 5]]));
    await r.index.stop();
  });

  it("own writes the watch brought before their ack are forgotten in time: the memory of own writes stays bounded", async () => {
    const r = await rig();
    const runs = OWN_WRITES_MAX + 500;
    for (let i = 1; i <= runs; i++) {
      const done = run(`t-${i}`, { version: 9, phase: 'Succeeded' });
      // The watch first (decoded as another writer's), then the ack: this revision never comes back to be matched.
      await r.put(i, done);
      r.index.wrote(i, done);
    }
    assert.equal(r.index.ownWritesPending, OWN_WRITES_MAX);
    // The newest are still recognised: their echo is skipped.
    const before = r.changes.length;
    await r.put(runs, run(`t-${runs}`, { version: 9, phase: 'Succeeded' }));
    assert.equal(r.changes.length, before);
    await r.index.stop();
  });

  it('an unreadable record is logged and the watch carries on', async () => {
    const r = await rig();
    r.watch.push({ key: 'bad', revision: 1, operation: 'PUT', value: new TextEncoder().encode('{"not":"a run"}') });
    await r.put(2, run('a'));
    assert.deepEqual([...r.indexed().keys()], ['a']);
    assert.deepEqual(r.lines.filter((l) => l.level === 'warn').map((l) => [l.runId, l.msg]), [['bad', 'unreadable run record in the watch']]);
    await r.index.stop();
  });

  it('counts in-flight runs per definition, and those past their deadline as stuck', async () => {
    const r = await rig();
    r.index.wrote(1, run('a', { deadlineAt: T0 + 100 }));
    r.index.wrote(2, run('b', { deadlineAt: T0 + 300 }));
    r.index.wrote(3, run('c', { definitionKey: 'k8s.other', deadlineAt: T0 + 100 }));
    r.index.wrote(4, run('d', { phase: 'Failed' }));
    assert.deepEqual(r.index.counts(T0 + 200), new Map([[base.definitionKey, { inFlight: 2, stuck: 1 }], ['k8s.other', { inFlight: 1, stuck: 1 }]]));
    await r.index.stop();
  });
});
