// Publishes the outboxes of non-terminal runs untouched for the grace period whose current version this replica has not published (after a crash, all the dead process left).
import type { Logger } from '@sagamesh/runtime';
import { forEachLimit } from '../keyed-lock.ts';
import type { IndexEntry } from './run-index.ts';
import type { RunRecord, RunStore } from './store.ts';

export interface SweeperOptions {
  /** The non-terminal runs of the bucket. */
  runs: () => Iterable<[string, IndexEntry]>;
  /** The version of the run whose outbox this replica has published. */
  publishedVersion: (runId: string) => number | undefined;
  store: Pick<RunStore, 'exclusive' | 'read' | 'keep'>;
  /** Publishes the record's outbox unless this replica already did; true when it did now. */
  ensurePublished: (runId: string, record: RunRecord) => Promise<boolean>;
  graceMs: number;
  now: () => number;
  log: Logger;
}

export class Sweeper {
  readonly #o: SweeperOptions;
  #sweeping = false;

  constructor(opts: SweeperOptions) {
    this.#o = opts;
  }

  /** Returns how many runs it flushed; 0 at once while a sweep is still running. */
  async sweep(limit = 32): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    const { store, graceMs, log } = this.#o;
    let flushed = 0;
    try {
      const now = this.#o.now();
      const due = [...this.#o.runs()].filter(([runId, e]) => now - e.updatedAtMs >= graceMs && this.#o.publishedVersion(runId) !== e.version).map(([runId]) => runId);
      await forEachLimit(due, limit, async (runId) => {
        try {
          await store.exclusive(runId, async () => {
            const cur = await store.read(runId);
            // Changed since the index saw it: its writer is at work and publishes it.
            if (!cur || this.#o.now() - cur.stored.state.updatedAtMs < graceMs) return;
            store.keep(runId, cur);
            if (await this.#o.ensurePublished(runId, cur)) flushed++;
          });
        } catch (err) {
          log.warn({ err, runId }, 'sweep could not publish an outbox; will try again');
        }
      });
    } finally {
      this.#sweeping = false;
    }
    return flushed;
  }
}
