// An in-memory index of the bucket's non-terminal runs, fed by a watch of KV saga-runs and by this replica's own writes, that reports what other writers changed.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { isTerminalPhase } from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/runtime';
import type { RunState } from '../core/types.ts';
import { decodeRun } from '../outbox.ts';
import type { RunRecord } from './store.ts';

export interface IndexEntry {
  definitionKey: string;
  deadlineAt: number;
  version: number;
  updatedAtMs: number;
}

export interface RunIndexOptions {
  kv: KV;
  log: Logger;
  /** A run's record written by another writer (undefined: deleted); called before the index takes it in. */
  onChange: (runId: string, record: RunRecord | undefined) => void;
}

/** Own writes remembered at most: far more than a replica has in flight between a write and its watch entry. */
export const OWN_WRITES_MAX = 10_000;

export class RunIndex {
  readonly #kv: KV;
  readonly #log: Logger;
  readonly #onChange: RunIndexOptions['onChange'];
  readonly #entries = new Map<string, IndexEntry>();
  /**
   * KV revisions this replica wrote, so the watch need not decode them again. Bounded: when the watch brings a write
   * before its ack (common under load), its entry is never matched — the run's last write would stay for good.
   */
  readonly #ownWrites = new Map<string, number>();
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #watching: Promise<void> | undefined;
  #open = false;
  #stopping = false;

  constructor(opts: RunIndexOptions) {
    this.#kv = opts.kv;
    this.#log = opts.log;
    this.#onChange = opts.onChange;
  }

  /** Starts watching saga-runs (all current values, then every change); resolves once the watch is open. */
  async start(): Promise<void> {
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    this.#watching = (async () => {
      while (!this.#stopping) {
        try {
          const watch = await this.#kv.watch();
          this.#watch = watch;
          this.#open = true;
          opened();
          for await (const e of watch) {
            try {
              this.#onWatch(e);
            } catch (err) {
              this.#log.warn({ err, runId: e.key, revision: e.revision }, 'unreadable run record in the watch');
            }
          }
        } catch (err) {
          if (!this.#stopping) this.#log.error({ err }, 'run watch failed');
        } finally {
          this.#open = false;
        }
        if (!this.#stopping) {
          this.#log.warn('run watch ended; restarting');
          await sleep(1000);
        }
      }
    })();
    await open;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#watch?.stop();
    await this.#watching;
  }

  /** Whether the watch is open now. */
  open(): boolean {
    return this.#open;
  }

  /** This replica wrote `state` at `revision`: index it now, and skip it when the watch brings it. */
  wrote(revision: number, state: RunState): void {
    this.#ownWrites.delete(state.runId);
    this.#ownWrites.set(state.runId, revision);
    // The oldest go first; one forgotten is only decoded again when (if ever) the watch brings it.
    if (this.#ownWrites.size > OWN_WRITES_MAX) this.#ownWrites.delete(this.#ownWrites.keys().next().value!);
    this.#take(state);
  }

  /** Own writes waiting for the watch to bring them (at most OWN_WRITES_MAX). */
  get ownWritesPending(): number {
    return this.#ownWrites.size;
  }

  entries(): Iterable<[string, IndexEntry]> {
    return this.#entries.entries();
  }

  /** Non-terminal runs per definition key, and those past their deadline. */
  counts(now: number): Map<string, { inFlight: number; stuck: number }> {
    const out = new Map<string, { inFlight: number; stuck: number }>();
    for (const e of this.#entries.values()) {
      const c = out.get(e.definitionKey) ?? { inFlight: 0, stuck: 0 };
      c.inFlight++;
      if (e.deadlineAt < now) c.stuck++;
      out.set(e.definitionKey, c);
    }
    return out;
  }

  #onWatch(e: KvWatchEntry): void {
    const runId = e.key;
    const own = this.#ownWrites.get(runId);
    if (own !== undefined) {
      if (e.revision === own) this.#ownWrites.delete(runId);
      if (e.revision <= own) return;
      this.#ownWrites.delete(runId);
    }
    if (e.operation !== 'PUT' || e.value.length === 0) {
      this.#entries.delete(runId);
      this.#onChange(runId, undefined);
      return;
    }
    const stored = decodeRun(e.value);
    this.#onChange(runId, { revision: e.revision, stored });
    this.#take(stored.state);
  }

  #take(state: RunState): void {
    if (isTerminalPhase(state.phase)) this.#entries.delete(state.runId);
    else this.#entries.set(state.runId, { definitionKey: state.definitionKey, deadlineAt: state.deadlineAt, version: state.version, updatedAtMs: state.updatedAtMs });
  }
}
