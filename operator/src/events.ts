/**
 * Records Kubernetes Events off the reconcile path, as client-go's recorder does: Events are
 * best-effort, so a reconcile never waits for them. Each Event is timestamped when recorded (so
 * they keep their order however they are sent), sent by a few senders, and dropped — oldest first,
 * with a warning — when too many wait. A transition's Event has a fixed name, so a repeat is a 409.
 */
import type { Logger } from '@sagamesh/runtime';
import type { EventSpec } from './transition-events.ts';
import { nextEventTime, type AnyObject, type KubeApi, type Kind } from './kube.ts';

export interface EventRecorderOptions {
  kube: KubeApi;
  log: Logger;
  /** Events sent at once (default 4). */
  concurrency?: number;
  /** Most Events waiting (default 10000). */
  maxQueued?: number;
}

type Pending = { kind: Kind; obj: AnyObject; event: EventSpec; time: ReturnType<typeof nextEventTime> };

export class EventRecorder {
  readonly #o: Required<EventRecorderOptions>;
  readonly #queue: Pending[] = [];
  #sending = 0;
  #dropped = 0;
  #idle: PromiseWithResolvers<void> | undefined;

  constructor(opts: EventRecorderOptions) {
    this.#o = { concurrency: 4, maxQueued: 10_000, ...opts };
  }

  record(kind: Kind, obj: AnyObject, event: EventSpec): void {
    if (this.#queue.length >= this.#o.maxQueued) {
      this.#queue.shift();
      if (this.#dropped++ % 1000 === 0) this.#o.log.warn({ dropped: this.#dropped }, 'too many Events waiting: dropping the oldest');
    }
    this.#queue.push({ kind, obj, event, time: nextEventTime() });
    this.#pump();
  }

  #pump(): void {
    while (this.#sending < this.#o.concurrency && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      this.#sending++;
      this.#o.kube
        .recordEvent(next.kind, next.obj, next.event, next.time)
        .catch((err: unknown) => this.#o.log.warn({ err, reason: next.event.reason, name: next.obj.metadata.name }, 'could not record an Event'))
        .finally(() => {
          this.#sending--;
          this.#pump();
        });
    }
    if (this.#sending === 0 && this.#queue.length === 0) {
      this.#idle?.resolve();
      this.#idle = undefined;
    }
  }

  /** Resolves when every recorded Event was sent (or failed). */
  flush(): Promise<void> {
    if (this.#sending === 0 && this.#queue.length === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }
}
