import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelayMs } from '@sagamesh/contracts';
import { WorkQueue, runWorkers } from '../src/queue.ts';

describe('WorkQueue', () => {
  it('holds a key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.depth, 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.depth, 0);
  });

  it('a key added while it is processed is handed out again only after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    assert.equal(q.depth, 0, 'not handed to a second worker meanwhile');
    q.done(key!);
    assert.equal(q.depth, 1);
    assert.equal(await q.get(), 'a');
    q.done('a');
    assert.equal(q.depth, 0);
  });

  it('a waiting get() receives the next key; shutDown() releases waiters with undefined', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    assert.equal(await waiting, 'x');
    const waiter = q.get();
    q.shutDown();
    assert.equal(await waiter, undefined);
    q.add('y');
    assert.equal(await q.get(), undefined);
  });

  it('rate-limited adds back off exponentially per key, up to the cap, and forget() resets', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs({ initialMs: 100, maxMs: 1000 }, n)), [100, 200, 400, 800, 1000, 1000]);
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
    assert.deepEqual([q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')], [10, 20, 40, 40]);
    assert.equal(q.addRateLimited('b'), 10, 'per key');
    q.forget('a');
    assert.equal(q.failures('a'), 0);
    assert.equal(q.addRateLimited('a'), 10);
    q.shutDown();
  });

  it('a delayed add arrives later; an earlier delayed add of the same key wins', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 60_000);
    q.addAfter('a', 5);
    assert.equal(q.depth, 0);
    assert.equal(await q.get(), 'a');
    q.shutDown();
  });

  it('model: whatever the interleaving, no key is processed twice at once, none waits twice, and every add is seen after it', async () => {
    type Op = { op: 'add'; key: string } | { op: 'get' } | { op: 'done'; index: number };
    const key = fc.constantFrom('a', 'b', 'c', 'd');
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('add' as const), key }),
      fc.record({ op: fc.constant('get' as const) }),
      fc.record({ op: fc.constant('done' as const), index: fc.nat(3) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const q = new WorkQueue();
        const processing: string[] = [];
        // Keys added since they were last handed out: each must be handed out again.
        const owed = new Set<string>();
        for (const o of ops) {
          if (o.op === 'add') {
            q.add(o.key);
            owed.add(o.key);
          } else if (o.op === 'get') {
            if (q.depth === 0) continue; // get() would wait
            const k = (await q.get())!;
            assert.ok(!processing.includes(k), `${k} handed out while processed`);
            processing.push(k);
            owed.delete(k);
          } else if (processing.length > 0) {
            const [k] = processing.splice(o.index % processing.length, 1);
            q.done(k!);
          }
        }
        for (const k of processing.splice(0)) q.done(k);
        const drained: string[] = [];
        while (q.depth > 0) {
          const k = (await q.get())!;
          drained.push(k);
          q.done(k);
        }
        assert.equal(new Set(drained).size, drained.length, 'no key waits twice');
        for (const k of owed) assert.ok(drained.includes(k), `${k} was added but never handed out after`);
      }),
      { numRuns: 500 },
    );
  });
});

describe('runWorkers', () => {
  it('bounded workers handle every key, never the same key concurrently, and stop on shutDown', async () => {
    const q = new WorkQueue();
    const active = new Set<string>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const handled: string[] = [];
    const workers = runWorkers(q, 3, async (key) => {
      assert.ok(!active.has(key));
      active.add(key);
      maxConcurrent = Math.max(maxConcurrent, ++concurrent);
      await new Promise((r) => setImmediate(r));
      handled.push(key);
      if (handled.length < 40) q.add(`k${handled.length % 7}`); // re-adds while processing
      concurrent--;
      active.delete(key);
    });
    for (let i = 0; i < 7; i++) q.add(`k${i}`);
    while (handled.length < 40 || q.depth > 0) await new Promise((r) => setImmediate(r));
    q.shutDown();
    await workers;
    assert.ok(maxConcurrent <= 3);
    for (let i = 0; i < 7; i++) assert.ok(handled.includes(`k${i}`));
  });
});
