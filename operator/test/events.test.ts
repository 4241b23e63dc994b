import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '@sagamesh/runtime';
import type { SagaObject } from '@sagamesh/contracts';
import { EventRecorder } from '../src/events.ts';
import type { KubeApi } from '../src/kube.ts';
import { saga } from './fixtures.ts';

/** A KubeApi whose recordEvent calls wait until released. */
function fakeKube() {
  const sent: { reason: string; time: string }[] = [];
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const kube = {
    recordEvent: async (_kind: string, _obj: SagaObject, event: { reason: string }, time: Date) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((r) => waiting.push(r));
      inFlight--;
      sent.push({ reason: event.reason, time: time.toISOString() });
    },
  } as unknown as KubeApi;
  const releaseAll = async () => {
    while (waiting.length > 0 || inFlight > 0) {
      waiting.splice(0).forEach((r) => r());
      await new Promise((r) => setImmediate(r));
    }
  };
  return { kube, sent, releaseAll, maxInFlight: () => maxInFlight };
}
const ev = (reason: string) => ({ key: reason, type: 'Normal' as const, reason, note: reason });

describe('EventRecorder', () => {
  it('never blocks the caller, sends with bounded concurrency, and stamps strictly increasing times in recording order', async () => {
    const f = fakeKube();
    const recorder = new EventRecorder({ kube: f.kube, log: createLogger('test', 'silent'), concurrency: 2 });
    for (let i = 0; i < 10; i++) recorder.record('Saga', saga(), ev(`r${i}`));
    const flushed = recorder.flush();
    await f.releaseAll();
    await flushed;
    assert.equal(f.sent.length, 10);
    assert.ok(f.maxInFlight() <= 2);
    const byReason = new Map(f.sent.map((s) => [s.reason, s.time]));
    const times = Array.from({ length: 10 }, (_, i) => byReason.get(`r${i}`)!);
    assert.deepEqual([...times].sort(), times, 'times follow the recording order');
    assert.equal(new Set(times).size, 10, 'and are distinct (microseconds)');
    assert.match(times[0]!, /\.\d{6}Z$/);
  });

  it('drops the oldest when too many wait', async () => {
    const f = fakeKube();
    const recorder = new EventRecorder({ kube: f.kube, log: createLogger('test', 'silent'), concurrency: 1, maxQueued: 3 });
    for (let i = 0; i < 6; i++) recorder.record('Saga', saga(), ev(`r${i}`));
    await f.releaseAll();
    await recorder.flush();
    // r0 went out at once; of r1..r5 only the newest 3 waited.
    assert.deepEqual(f.sent.map((s) => s.reason), ['r0', 'r3', 'r4', 'r5']);
  });

  it('flush() resolves at once when nothing waits', async () => {
    const recorder = new EventRecorder({ kube: fakeKube().kube, log: createLogger('test', 'silent') });
    await recorder.flush();
  });
});
