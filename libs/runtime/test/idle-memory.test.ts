import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { releaseMemoryWhenIdle } from '../src/idle-memory.ts';

describe('releaseMemoryWhenIdle', () => {
  it('once idle, runs one memory-reducing full GC, and no other until the heap has grown again', async () => {
    // The first idle interval releases (the heap holds more than 4 MiB: it grew from nothing); a no-op collector
    // frees nothing, so the heap then stays within 4 MiB of where it was and no second release comes.
    const calls: unknown[] = [];
    const stop = releaseMemoryWhenIdle({ intervalMs: 40, gc: ((o: unknown) => void calls.push(o)) as NodeJS.GCFunction, minGrowthBytes: 4 * 1024 * 1024 });
    await sleep(300);
    stop();
    assert.deepEqual(calls, [{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
  });

  it('never while the event loop is busy', async () => {
    let calls = 0;
    const stop = releaseMemoryWhenIdle({ intervalMs: 40, gc: (() => void calls++) as NodeJS.GCFunction, maxBusy: 0 });
    await sleep(200);
    stop();
    assert.equal(calls, 0);
  });

});
