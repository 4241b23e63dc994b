/**
 * The reconciler: no order outcome lost. An order whose saga ended but whose end event never reached orders (dead-lettered,
 * lost) would stay PENDING forever; so would one whose saga never started (its `placed` dead-lettered by the projector).
 * Every RECONCILE_INTERVAL_MS (±25 % jitter) it takes the orders PENDING longer than PENDING_AFTER_MS and asks the
 * engine for each one's run (run id = order id):
 * - the run ended → its end is applied through the saga-end listener's own path (applySagaEnd: the append expects the
 *   order's last sequence, so a race with the real end event, or with another replica, appends once);
 * - the run is still going → left alone (its end event is still to come);
 * - the engine has no such run (`not_found`: its start was lost, or the run record expired) → when the event store still
 *   has the order PENDING, its saga is started again through the projector's path (SagaStarter.start, idempotent by run
 *   id). Safe even for a run that expired after doing its steps: participants answer a repeated step from their ledgers
 *   (idempotency key `<runId>.<step>`), so the new run reaches the same end, and that end reaches orders as usual.
 *
 * Which orders are pending comes from the read model's watch of the view bucket (the one that already keeps the books),
 * so memory is one entry per pending order and no second watch or stream scan is needed. Every replica reconciles; the
 * jitter spreads them, and the work is idempotent: a second replica's append is a no-op, the engine de-duplicates a
 * start, and the counter counts only what changed something (an append made, a run created).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Metrics, ReconcileOutcomes, type RunView } from '@sagamesh/contracts';
import { type EngineClient, EngineRequestError, EngineUnavailableError } from '@sagamesh/participant';
import type { Logger, ServiceMetrics } from '@sagamesh/runtime';
import { Counter } from 'prom-client';
import type { OrderEventStore } from './event-store.ts';
import { applySagaEnd } from './handlers.ts';
import type { ReadModel } from './read-model.ts';
import { endEventOf, type SagaStarter } from './saga.ts';

/** Orders looked at per round, oldest first (one engine request each, in turn): the rest wait for the next round. */
const ROUND_LIMIT = 1000;
const JITTER = 0.25;

export type ReconcileOutcome = (typeof ReconcileOutcomes)[number];

export interface ReconcilerOptions {
  readModel: Pick<ReadModel, 'pendingSince'>;
  store: Pick<OrderEventStore, 'execute' | 'load'>;
  engine: Pick<EngineClient, 'get'>;
  starter: Pick<SagaStarter, 'start'>;
  log: Logger;
  metrics: Pick<ServiceMetrics, 'registry'>;
  intervalMs: number;
  pendingAfterMs: number;
  now?: () => number;
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #reconciled: Counter<'outcome'>;
  readonly #now: () => number;
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#reconciled = new Counter({
      name: Metrics.ordersReconciledTotal,
      help: 'Orders left PENDING past the bound that the reconciler moved, by outcome (confirmed, cancelled, failed: their run had ended; restarted: the engine had no run)',
      labelNames: ['outcome'],
      registers: [opts.metrics.registry],
    });
    for (const outcome of ReconcileOutcomes) this.#reconciled.inc({ outcome }, 0);
  }

  /** Runs rounds until stop(), the first one interval after the call. */
  start(): void {
    this.#loop ??= (async () => {
      const signal = this.#stopping.signal;
      while (!signal.aborted) {
        const delay = this.#o.intervalMs * (1 - JITTER + 2 * JITTER * Math.random());
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          return; // stopped
        }
        try {
          await this.round();
        } catch (err) {
          this.#o.log.warn({ err }, 'reconcile round failed; the next one tries again');
        }
      }
    })();
  }

  /** Stops after the order in hand. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }

  /** One round: every order PENDING past the bound (up to ROUND_LIMIT). Returns what it did, per order. */
  async round(): Promise<Map<string, ReconcileOutcome>> {
    const done = new Map<string, ReconcileOutcome>();
    const due = await this.#o.readModel.pendingSince(this.#now() - this.#o.pendingAfterMs, ROUND_LIMIT);
    for (const orderId of due) {
      if (this.#stopping.signal.aborted) break;
      try {
        const outcome = await this.#reconcile(orderId);
        if (outcome !== undefined) done.set(orderId, outcome);
      } catch (err) {
        if (err instanceof EngineUnavailableError) {
          this.#o.log.warn({ err, due: due.length }, 'reconcile: the saga engine does not answer; the next round tries again');
          break;
        }
        this.#o.log.warn({ err, orderId }, 'reconcile: order not reconciled; the next round tries again');
      }
    }
    return done;
  }

  async #reconcile(orderId: string): Promise<ReconcileOutcome | undefined> {
    let run: RunView;
    try {
      run = (await this.#o.engine.get({ runId: orderId })).run;
    } catch (err) {
      if (err instanceof EngineRequestError && err.code === 'not_found') return this.#restart(orderId);
      throw err;
    }
    const end = endEventOf(run);
    if (end === undefined) return undefined; // still running: its end event is still to come
    const appended = await applySagaEnd(this.#o.store, end);
    const outcome = appended?.[0]?.name;
    // Nothing appended: the real end event (or another replica) got there first, and the view is catching up.
    if (outcome === undefined || outcome === 'placed') return undefined;
    this.#reconciled.inc({ outcome });
    this.#o.log.info({ orderId, outcome, phase: run.phase }, 'order reconciled: its run had ended but the end never reached orders');
    return outcome;
  }

  async #restart(orderId: string): Promise<ReconcileOutcome | undefined> {
    // The event store decides, not the view: an order that already ended must not start a saga again.
    const { state } = await this.#o.store.load(orderId);
    if (state?.status !== 'PENDING') return undefined;
    const { created, run } = await this.#o.starter.start(state);
    if (!created) return undefined; // started meanwhile (the projector, another replica)
    this.#reconciled.inc({ outcome: 'restarted' });
    this.#o.log.warn({ orderId, outcome: 'restarted', phase: run.phase }, 'order reconciled: the engine had no run for it, its saga started again');
    return 'restarted';
  }
}
