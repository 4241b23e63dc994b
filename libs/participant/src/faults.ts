import { setTimeout as sleepFor } from 'node:timers/promises';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { ClosedConnectionError, type QueuedIterator } from '@nats-io/transport-node';
import { Buckets, Fault, faultFires, validator } from '@sagamesh/contracts';
import { openBucket, type Logger } from '@sagamesh/runtime';

const faultValidator = validator(Fault, 'fault');

/**
 * The global faults (`/admin/faults`), one KV entry per target in bucket `faults`. `list()` reads a
 * local copy kept current by a KV watch, so handlers can consult it per message at no cost.
 */
export class FaultStore {
  readonly #kv: KV;
  readonly #log: Logger | undefined;
  readonly #faults = new Map<string, Fault>();
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #closed = false;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  private constructor(kv: KV, log: Logger | undefined) {
    this.#kv = kv;
    this.#log = log;
  }

  /** Opens (creating if needed, with `replicas`, default 1) the bucket and resolves once the current faults are loaded. */
  static async open(js: JetStreamClient, opts: { log?: Logger; replicas?: number } = {}): Promise<FaultStore> {
    const kv = await openBucket(js, Buckets.faults, { replicas: opts.replicas });
    const store = new FaultStore(kv, opts.log);
    await store.#start();
    return store;
  }

  /** Every fault in force, sorted by target. */
  list(): Fault[] {
    return [...this.#faults.values()].sort((a, b) => a.target.localeCompare(b.target));
  }

  /** Sets the fault for its target (schema-checked, defaults applied); returns what was stored. */
  async put(fault: Pick<Fault, 'target'> & Partial<Fault>): Promise<Fault> {
    const f = faultValidator.parse(fault);
    await this.#kv.put(f.target, JSON.stringify(f));
    return f;
  }

  /** Removes every fault. */
  async clear(): Promise<void> {
    const keys = await this.#kv.keys();
    for await (const key of keys) await this.#kv.purge(key);
  }

  /** Stops watching (the store then keeps its last view). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#watch?.stop();
    await this.#loop;
  }

  #apply(e: KvWatchEntry): void {
    if (e.operation !== 'PUT') {
      this.#faults.delete(e.key);
      return;
    }
    try {
      this.#faults.set(e.key, faultValidator.parse(e.json()));
    } catch (err) {
      this.#faults.delete(e.key);
      this.#log?.warn({ err, key: e.key }, 'ignoring an invalid fault entry');
    }
  }

  // Resolves once the watch has delivered everything up to the bucket's last revision at open time.
  async #start(): Promise<void> {
    const lastSeq = (await this.#kv.status()).streamInfo.state.last_seq;
    let markLoaded: () => void = () => undefined;
    const loaded = new Promise<void>((r) => {
      markLoaded = r;
    });
    if (lastSeq === 0) markLoaded();
    const first = await this.#kv.watch();
    this.#loop = (async () => {
      let watch: QueuedIterator<KvWatchEntry> | undefined = first;
      while (!this.#closed) {
        try {
          watch ??= await this.#kv.watch();
          this.#watch = watch;
          for await (const e of watch) {
            this.#apply(e);
            if (e.revision >= lastSeq) markLoaded();
          }
        } catch (err) {
          if (err instanceof ClosedConnectionError) break;
          this.#log?.warn({ err }, 'fault watch failed; restarting');
        }
        watch = undefined;
        if (!this.#closed) await sleepFor(1000, undefined, { signal: this.#abort.signal }).catch(() => undefined);
      }
    })();
    await loaded;
  }
}

export interface ApplyFaultOptions {
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
  /** Default a timer; rejects when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Default SIGKILL of this process (a crash, no cleanup). */
  crash?: () => never;
  signal?: AbortSignal;
}

export interface FaultDecision {
  /** The injected failure fires: reply with a failure instead of doing the work. */
  fail: boolean;
  /** Call right after committing the state change: crashes when the fault asks for crash-after-commit. */
  crashAfterCommit(): void;
}

const killSelf = (): never => {
  process.kill(process.pid, 'SIGKILL');
  // Still alive: PID 1 of a container without an init (the images run tini for this), whose own SIGKILL the
  // kernel drops. End as a crash would anyway: no cleanup, the status a SIGKILL gives.
  process.stderr.write('crash-after-commit: SIGKILL did not end the process (PID 1 without an init?): exiting 137\n');
  process.exit(137);
};

/** Applies a fault to one command: sleeps its latency, then decides whether it fails. */
export async function applyFault(fault: Fault | undefined, opts: ApplyFaultOptions = {}): Promise<FaultDecision> {
  const sleep = opts.sleep ?? ((ms: number, signal?: AbortSignal) => sleepFor(ms, undefined, signal ? { signal } : {}));
  if (fault && fault.latencyMs > 0) await sleep(fault.latencyMs, opts.signal);
  const fail = faultFires(fault, (opts.random ?? Math.random)());
  const crash = opts.crash ?? killSelf;
  return {
    fail,
    crashAfterCommit() {
      if (fault?.crashAfterCommit && !fail) crash();
    },
  };
}
