/**
 * List+watch cache of one resource, over client-node's informer (ListWatch). What ListWatch does:
 * list, then watch from the list's resourceVersion; a watch closed by the server or timing out
 * resumes from the last resourceVersion; 410 Gone (an expired resourceVersion) relists and reports
 * the objects that vanished meanwhile as deletions. What it does not, added here: it stops for good on
 * any other error (a refused connection, a failed list) — this restarts it with capped exponential
 * backoff (resuming from the last resourceVersion); it has no notion of "synced" — `waitForSync()`
 * and `synced()` (readiness) tell when the first list is in; and it reports an error when it is
 * stopped — ignored here.
 */
import { makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '@sagamesh/runtime';
import { backoffDelayMs } from '@sagamesh/contracts';

export type InformerEvent = 'add' | 'update' | 'delete';

/** Custom objects as client-node returns them (plain JSON: timestamps are strings, not Dates). */
export interface CachedObject {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ResilientInformerOptions<T extends CachedObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /apis/sagamesh.io/v1alpha1/sagas. */
  path: string;
  list: () => Promise<{ metadata: { resourceVersion: string }; items: T[] }>;
  onEvent: (event: InformerEvent, obj: T) => void;
  log: Logger;
  /** First restart delay after an error (default 500 ms), doubling up to `maxRestartDelayMs` (default 30 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

export class ResilientInformer<T extends CachedObject> {
  readonly #informer: Informer<T> & ObjectCache<T>;
  readonly #opts: ResilientInformerOptions<T>;
  #stopped = false;
  #synced = false;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #firstSync = Promise.withResolvers<void>();
  /** How many full lists were made: the first, plus one per relist (after 410 Gone, or a failed list). */
  lists = 0;

  constructor(opts: ResilientInformerOptions<T>) {
    this.#opts = opts;
    const list = async () => {
      const result = await opts.list();
      this.lists++;
      this.#synced = true;
      this.#failures = 0;
      this.#firstSync.resolve();
      return result;
    };
    // client-node types objects with Date timestamps; custom objects arrive as plain JSON.
    this.#informer = makeInformer(opts.kubeConfig, opts.path, list as () => Promise<KubernetesListObject<KubernetesObject>>) as unknown as Informer<T> & ObjectCache<T>;
    for (const event of ['add', 'update', 'delete'] as const) {
      this.#informer.on(event, (o) => {
        this.#failures = 0; // the watch works again
        opts.onEvent(event, o);
      });
    }
    this.#informer.on('error', (err) => this.#onError(err));
  }

  #onError(err: unknown): void {
    if (this.#stopped) return; // stop() aborts the watch, which reports an AbortError
    this.#failures++;
    const delay = backoffDelayMs({ initialMs: this.#opts.restartDelayMs ?? 500, maxMs: this.#opts.maxRestartDelayMs ?? 30_000 }, this.#failures);
    this.#opts.log.warn({ err, path: this.#opts.path, delayMs: delay }, 'informer failed: restarting');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopped) this.#run();
    }, delay);
  }

  /** Starts listing and watching (errors restart it); `synced()` tells when the first list is in. */
  start(): void {
    this.#stopped = false;
    this.#run();
  }

  #run(): void {
    this.#informer.start().catch((err: unknown) => this.#onError(err));
  }

  /** Resolves after the first successful list. */
  waitForSync(): Promise<void> {
    return this.#firstSync.promise;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }

  synced(): boolean {
    return this.#synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.#informer.list(namespace);
  }
}
