/**
 * Leader election with a coordination.k8s.io/v1 Lease, client-go's algorithm (client-node has none):
 * the holder renews the lease every retry period; a candidate takes it over once it has seen no
 * renewal for a whole lease duration (measured on its own clock, from when it observed the record
 * change — so clocks of different replicas need not agree); a holder that cannot renew within the
 * renew deadline steps down. Stopping releases the lease so another replica takes over at once.
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '@sagamesh/runtime';
import { isApiError } from './kube.ts';

export interface LeaseRecord {
  holder: string | undefined;
  durationMs: number;
  transitions: number;
  resourceVersion: string;
}

export type LeaseStep = 'create' | 'renew' | 'acquire' | 'follow';

/** What a replica does with the lease it observed. Pure. */
export function leaseStep(lease: LeaseRecord | undefined, identity: string, now: number, observedAt: number): LeaseStep {
  if (!lease) return 'create';
  if (lease.holder === identity) return 'renew';
  if (!lease.holder) return 'acquire';
  return now - observedAt >= lease.durationMs ? 'acquire' : 'follow';
}

export interface LeaderElectorOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

function toRecord(lease: V1Lease): LeaseRecord {
  return {
    holder: lease.spec?.holderIdentity || undefined,
    durationMs: (lease.spec?.leaseDurationSeconds ?? 15) * 1000,
    transitions: lease.spec?.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  };
}

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  #leader = false;
  #lastRenew = 0;
  #observed: { resourceVersion: string; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: LeaderElectorOptions) {
    this.#o = opts;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        // Candidates poll with jitter so that replicas do not move in lockstep.
        this.#schedule(this.#leader ? this.#o.retryPeriodMs : this.#o.retryPeriodMs * (1 + Math.random() * 0.2));
      });
    }, ms);
  }

  async #tick(): Promise<void> {
    const now = Date.now();
    let held: boolean;
    try {
      held = await this.#tryAcquireOrRenew(now);
    } catch (err) {
      this.#o.log.warn({ err, lease: this.#o.name }, 'lease request failed');
      held = false;
      if (this.#leader && now - this.#lastRenew < this.#o.renewDeadlineMs) return; // still within the renew deadline
    }
    if (held) {
      this.#lastRenew = now;
      if (!this.#leader) {
        this.#leader = true;
        this.#o.log.info({ lease: this.#o.name, identity: this.#o.identity }, 'became the leader');
        this.#o.onStartedLeading();
      }
    } else if (this.#leader) {
      this.#leader = false;
      this.#o.log.warn({ lease: this.#o.name, identity: this.#o.identity }, 'lost the lease: stepping down');
      this.#o.onStoppedLeading();
    }
  }

  async #tryAcquireOrRenew(now: number): Promise<boolean> {
    const { api, namespace, name, identity } = this.#o;
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
    const record = lease ? toRecord(lease) : undefined;
    if (record && record.resourceVersion !== this.#observed?.resourceVersion) this.#observed = { resourceVersion: record.resourceVersion, at: now };
    const step = leaseStep(record, identity, now, this.#observed?.at ?? now);
    const seconds = Math.max(1, Math.ceil(this.#o.leaseDurationMs / 1000));
    const time = new V1MicroTime(now);
    try {
      switch (step) {
        case 'follow':
          return false;
        case 'create':
          await api.createNamespacedLease({
            namespace,
            body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: time, renewTime: time, leaseTransitions: 0 } },
          });
          return true;
        case 'renew':
        case 'acquire':
          await api.replaceNamespacedLease({
            name,
            namespace,
            body: {
              metadata: { name, namespace, resourceVersion: record!.resourceVersion },
              spec: {
                ...lease!.spec,
                holderIdentity: identity,
                leaseDurationSeconds: seconds,
                renewTime: time,
                ...(step === 'acquire' ? { acquireTime: time, leaseTransitions: record!.transitions + 1 } : {}),
              },
            },
          });
          return true;
      }
    } catch (err) {
      // Someone else wrote the lease first (409) or created it (409 on create): not ours this round.
      if (isApiError(err, 409)) return false;
      throw err;
    }
  }

  /** Stops electing; a leader releases the lease (empty holder) so a candidate acquires it at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    if (!this.#leader) return;
    this.#leader = false;
    this.#o.onStoppedLeading();
    const { api, namespace, name, identity } = this.#o;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const time = new V1MicroTime(Date.now());
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: { metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion }, spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: time } },
      });
      this.#o.log.info({ lease: name }, 'released the lease');
    } catch (err) {
      this.#o.log.warn({ err, lease: name }, 'could not release the lease: the next leader waits for it to expire');
    }
  }
}
