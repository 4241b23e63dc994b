import { backoffDelayMs } from '@sagamesh/contracts';
/**
 * A work queue of object keys (`<kind>/<namespace>/<name>`) with client-go's semantics: a key waits
 * in the queue at most once (de-duplication), is never handed to two workers at once (a key added
 * while it is being processed is queued again when it is done), and failed keys come back with a
 * per-key exponential delay. Hand-written: @kubernetes/client-node has no work queue.
 */

export interface WorkQueueOptions {
  /** First retry delay of a failing key (default 100 ms); doubles per failure. */
  baseDelayMs?: number;
  /** Cap on a failing key's delay (default 60 s). */
  maxDelayMs?: number;
  /** Called with the number of waiting keys whenever it changes. */
  onDepth?: (depth: number) => void;
}


export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #base: number;
  readonly #max: number;
  readonly #onDepth: ((depth: number) => void) | undefined;
  #shutDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.#base = opts.baseDelayMs ?? 100;
    this.#max = opts.maxDelayMs ?? 60_000;
    this.#onDepth = opts.onDepth;
  }

  /** Keys waiting to be processed. */
  get depth(): number {
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#shutDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // queued again by done()
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
      return;
    }
    this.#queue.push(key);
    this.#onDepth?.(this.#queue.length);
  }

  /** Adds the key after `ms`; an earlier pending delayed add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Adds the key after its next exponential delay (a failed reconcile). */
  addRateLimited(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelayMs({ initialMs: this.#base, maxMs: this.#max }, failures);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets a key's failure count (a successful reconcile). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key (marked as processing until `done`); undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.#shutDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      this.#onDepth?.(this.#queue.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys; waiting `get()` calls resolve undefined; delayed adds are dropped. */
  shutDown(): void {
    this.#shutDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
    this.#queue.length = 0;
    this.#dirty.clear();
    this.#onDepth?.(0);
  }
}

/**
 * Runs `workers` loops that take keys and call `handle`; resolves when the queue is shut down and
 * every loop has finished its current key.
 */
export async function runWorkers(queue: WorkQueue, workers: number, handle: (key: string) => Promise<void>): Promise<void> {
  const loop = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await handle(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, loop));
}
