// The saga explorer's memory: the latest view and the events seen of the most recent runs, bounded; no I/O.
import { runSummaryOf, sagaEventEntries, type RunEventRecord, type RunSummary, type RunView, type SagaEvent } from '@sagamesh/contracts';

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

  /**
   * Takes one progress message (its event and those in `more`), stored at `at`. An older version of a run is ignored;
   * at the run's current version only events not seen yet are added (a kept run's transition comes as one message per
   * event, and an outbox sent again repeats what was seen).
   */
  apply(ev: SagaEvent, at: Date): void {
    const { run } = ev;
    const seenAt = at.toISOString();
    const records = sagaEventEntries(ev).map((e): RunEventRecord => ({ ...e, at: seenAt, version: run.version }));
    let entry = this.#entries.get(run.runId);
    if (entry) {
      if (run.version < entry.run.version) return;
      if (run.version === entry.run.version) {
        const seen = (r: RunEventRecord) => entry!.events.some((x) => x.version === r.version && x.event === r.event && x.step === r.step);
        this.#record(entry, records.filter((r) => !seen(r)));
        return;
      }
      entry.run = run;
      entry.summary = runSummaryOf(run);
      this.#record(entry, records);
    } else {
      entry = { run, summary: runSummaryOf(run), events: [], complete: ev.event === 'started' };
      this.#record(entry, records);
      this.#entries.set(run.runId, entry);
      if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    }
    for (const l of this.#listeners) l(entry.summary);
  }

  #record(entry: Entry, records: RunEventRecord[]): void {
    entry.events.push(...records);
    if (entry.events.length > MAX_EVENTS_PER_RUN) {
      entry.events.splice(0, entry.events.length - MAX_EVENTS_PER_RUN);
      entry.complete = false;
    }
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
