import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExplorerEvents, type RunSummary, type RunView, type SagaEvent } from '@sagamesh/contracts';
import { MAX_EVENTS_PER_RUN, RunIndex } from '../src/explorer/run-index.ts';
import { RunStream, type EventSink } from '../src/explorer/run-stream.ts';

const view = (runId: string, version: number, over: Partial<RunView> = {}): RunView => ({
  runId, definitionKey: 'builtin.order-fulfillment', revision: 'r', origin: 'order', phase: 'Running', steps: [], startedAt: '2025-01-01T00:00:00.000Z', version, ...over,
});
const ev = (run: RunView, event: SagaEvent['event'] = 'step_started'): SagaEvent => ({ event, run });
const at = new Date('2025-01-01T00:00:01Z');

/** A socket whose buffer fills after `room` writes, until drained. */
class FakeSink implements EventSink {
  chunks: string[] = [];
  room = Infinity;
  #drain: (() => void) | undefined;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return --this.room > 0;
  }
  once(_event: 'drain', fn: () => void) {
    this.#drain = fn;
  }
  drain() {
    this.room = Infinity;
    this.#drain?.();
  }
  events(): { event: string; runs: RunSummary[] }[] {
    return this.chunks.filter((c) => c.startsWith('event:')).map((c) => {
      const [e, d] = c.split('\n');
      return { event: e!.slice('event: '.length), runs: (JSON.parse(d!.slice('data: '.length)) as { runs: RunSummary[] }).runs };
    });
  }
}
const limits = { flushMs: 60_000, heartbeatMs: 60_000, maxPending: 3 };

describe('the explorer run index', () => {
  it('keeps each run at its highest version, with the events seen, and whether it saw the run from its start', () => {
    const index = new RunIndex(10);
    index.apply(ev(view('a', 1), 'started'), at);
    index.apply(ev(view('a', 3, { phase: 'Succeeded' }), 'succeeded'), at);
    index.apply(ev(view('a', 2)), at); // late and older: ignored
    index.apply(ev(view('b', 5)), at); // first seen mid-run
    const a = index.get('a')!;
    assert.equal(a.run.phase, 'Succeeded');
    assert.deepEqual(a.events.map((e) => e.event), ['started', 'succeeded']);
    assert.equal(a.complete, true);
    assert.equal(index.get('b')!.complete, false);
    assert.deepEqual(index.summaries().map((s) => s.runId), ['b', 'a'], 'the most recent first');
  });

  it('takes every event of a transition, whether one message carries them (more) or one message each, and none twice', () => {
    const index = new RunIndex(10);
    const names = () => index.get('a')!.events.map((e) => `${e.event}:${e.step ?? ''}@${e.version}`);
    // Live only (an order run): one message per transition.
    index.apply({ event: 'started', more: [{ event: 'step_started', step: 'reserve' }], run: view('a', 1) }, at);
    // Kept (a k8s run): the transition's events as separate messages of the same version; then both sent again.
    index.apply({ event: 'step_succeeded', step: 'reserve', run: view('a', 2) }, at);
    index.apply({ event: 'step_started', step: 'charge', run: view('a', 2) }, at);
    index.apply({ event: 'step_succeeded', step: 'reserve', run: view('a', 2) }, at);
    index.apply({ event: 'step_started', step: 'charge', more: [{ event: 'step_failed', step: 'charge', message: 'declined' }], run: view('a', 2) }, at);
    assert.deepEqual(names(), ['started:@1', 'step_started:reserve@1', 'step_succeeded:reserve@2', 'step_started:charge@2', 'step_failed:charge@2']);
    assert.equal(index.get('a')!.events.at(-1)!.message, 'declined');
    assert.equal(index.get('a')!.complete, true);
  });

  it('holds at most `capacity` runs (the first to enter leaves) and a bounded history per run', () => {
    const index = new RunIndex(2);
    for (const id of ['a', 'b', 'c']) index.apply(ev(view(id, 1), 'started'), at);
    assert.deepEqual(index.summaries().map((s) => s.runId), ['c', 'b']);
    for (let v = 2; v < MAX_EVENTS_PER_RUN + 10; v++) index.apply(ev(view('c', v)), at);
    const c = index.get('c')!;
    assert.equal(c.events.length, MAX_EVENTS_PER_RUN);
    assert.equal(c.complete, false, 'its oldest events were dropped');
  });
});

describe('a live-list stream', () => {
  it('starts with a snapshot, then sends each changed run once per flush at its latest version', () => {
    const index = new RunIndex(100);
    index.apply(ev(view('a', 1)), at);
    const sink = new FakeSink();
    const stream = new RunStream(index, sink, limits);
    index.apply(ev(view('b', 1)), at);
    index.apply(ev(view('b', 2, { phase: 'Succeeded' })), at);
    stream.flush();
    stream.flush(); // nothing new: nothing written
    stream.close();
    index.apply(ev(view('c', 1)), at); // after close: not sent
    stream.flush();
    assert.deepEqual(sink.events().map((e) => [e.event, e.runs.map((r) => `${r.runId}@${r.version}`)]), [
      [ExplorerEvents.snapshot, ['a@1']],
      [ExplorerEvents.runs, ['b@2']],
    ]);
  });

  it('a client that does not read gets nothing more until it drains, and a snapshot instead of too many changes', () => {
    const index = new RunIndex(100);
    const sink = new FakeSink();
    const stream = new RunStream(index, sink, limits);
    sink.room = 1; // the next write fills the socket
    index.apply(ev(view('a', 1)), at);
    stream.flush();
    for (const id of ['b', 'c', 'd', 'e']) index.apply(ev(view(id, 1)), at);
    stream.flush(); // blocked: nothing written
    assert.equal(sink.events().length, 2);
    sink.drain();
    stream.flush();
    stream.close();
    const events = sink.events();
    assert.equal(events.length, 3);
    assert.equal(events[2]!.event, ExplorerEvents.snapshot, 'more than maxPending changes became one snapshot');
    assert.deepEqual(events[2]!.runs.map((r) => r.runId), ['e', 'd', 'c', 'b', 'a']);
  });
});
