// Server-sent events of the run list, one per browser: coalesced, bounded, with a heartbeat.
import { ExplorerEvents, type RunDelta, type RunSnapshot, type RunSummary } from '@sagamesh/contracts';
import type { RunIndex } from './run-index.ts';

export interface RunStreamLimits {
  /** Changes are sent at most this often, each run once at its latest version (a run changes ~8 times in ~60 ms). */
  flushMs: number;
  /** A comment line this often, so proxies keep the connection and the client sees a dead one. */
  heartbeatMs: number;
  /** Changed runs waiting for one client, at most: past it (a slow client) they are dropped and a snapshot follows. */
  maxPending: number;
}

/** What the stream writes to: an HTTP response (write returns false when the socket's buffer is full). */
export interface EventSink {
  write(chunk: string): boolean;
  once(event: 'drain', fn: () => void): unknown;
}

/**
 * One client's stream: a snapshot of every run first, then `runs` events with what changed. A client that reads
 * slower than runs change never makes the gateway buffer without bound: while the socket is full nothing is written,
 * changes coalesce per run, and past `maxPending` runs they are dropped for one snapshot once the socket drains.
 */
export class RunStream {
  readonly #index: RunIndex;
  readonly #sink: EventSink;
  readonly #pending = new Map<string, RunSummary>();
  #resync = true;
  #blocked = false;
  readonly #unsubscribe: () => void;
  readonly #timers: NodeJS.Timeout[];

  constructor(index: RunIndex, sink: EventSink, limits: RunStreamLimits) {
    this.#index = index;
    this.#sink = sink;
    this.#unsubscribe = index.subscribe((s) => {
      if (this.#resync) return;
      this.#pending.set(s.runId, s);
      if (this.#pending.size > limits.maxPending) {
        this.#pending.clear();
        this.#resync = true;
      }
    });
    this.#timers = [setInterval(() => this.flush(), limits.flushMs), setInterval(() => this.#write(': heartbeat\n\n'), limits.heartbeatMs)];
    this.flush();
  }

  /** Writes what is due now (the timers call it; tests too). */
  flush(): void {
    if (this.#blocked) return;
    if (this.#resync) {
      this.#resync = false;
      this.#pending.clear();
      this.#send(ExplorerEvents.snapshot, { runs: this.#index.summaries(), capacity: this.#index.capacity } satisfies RunSnapshot);
    } else if (this.#pending.size > 0) {
      const runs = [...this.#pending.values()];
      this.#pending.clear();
      this.#send(ExplorerEvents.runs, { runs } satisfies RunDelta);
    }
  }

  close(): void {
    this.#unsubscribe();
    for (const t of this.#timers) clearInterval(t);
  }

  #send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(chunk: string): void {
    if (this.#blocked) return;
    if (!this.#sink.write(chunk)) {
      this.#blocked = true;
      this.#sink.once('drain', () => (this.#blocked = false));
    }
  }
}
