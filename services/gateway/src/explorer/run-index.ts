// The saga explorer's memory: the latest view and the events seen of the most recent runs, bounded; no I/O.
import { runSummaryOf, type RunEventRecord, type RunSummary, type RunView, type SagaEvent } from '@sagamesh/contracts';

/** Events kept per run: a run that retries for hours must not grow without end. */
export const MAX_EVENTS_PER_RUN = 64;

interface Entry {
  run: RunView;
  summary: RunSummary;
  events: RunEventRecord[];
  /** Seen from its `started` event on. */
  complete: boolean;
}

export type RunListener = (summary: RunSummary) => void;

/**
 * The `capacity` runs seen most recently first, each at its highest version. Runs enter in the order their first
 * event arrives (the stream's order, about the order they started), and the one that entered first leaves when a
 * new one would exceed the capacity: a Map keeps insertion order, so that is O(1).
 */
export class RunIndex {
  readonly capacity: number;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<RunListener>();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Takes one progress event, stored at `at`; an older or repeated version of a run is ignored. */
  apply(ev: SagaEvent, at: Date): void {
    const { run } = ev;
    const record: RunEventRecord = { event: ev.event, at: at.toISOString(), version: run.version };
    if (ev.step !== undefined) record.step = ev.step;
    if (ev.message !== undefined) record.message = ev.message;
    let entry = this.#entries.get(run.runId);
    if (entry) {
      if (run.version <= entry.run.version) return;
      entry.run = run;
      entry.summary = runSummaryOf(run);
      entry.events.push(record);
      if (entry.events.length > MAX_EVENTS_PER_RUN) {
        entry.events.splice(0, entry.events.length - MAX_EVENTS_PER_RUN);
        entry.complete = false;
      }
    } else {
      entry = { run, summary: runSummaryOf(run), events: [record], complete: ev.event === 'started' };
      this.#entries.set(run.runId, entry);
      if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    }
    for (const l of this.#listeners) l(entry.summary);
  }

  /** Every run held, the most recently entered first. */
  summaries(): RunSummary[] {
    return [...this.#entries.values()].map((e) => e.summary).reverse();
  }

  get(runId: string): { run: RunView; events: RunEventRecord[]; complete: boolean } | undefined {
    const e = this.#entries.get(runId);
    return e && { run: e.run, events: [...e.events], complete: e.complete };
  }

  /** Calls `l` with each run that changes, until the returned function is called. */
  subscribe(l: RunListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
}
