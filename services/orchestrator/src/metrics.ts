import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Metrics, SagaOutcomes } from '@sagamesh/contracts';
import type { Effect } from './core/types.ts';

export interface RunCounts {
  /** Non-terminal runs per definition key, and those past their deadline. */
  counts(now: number): Map<string, { inFlight: number; stuck: number }>;
}

const SAGA_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const STEP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The saga metrics (labels: definition key, step name, outcome — never a run id). */
export class SagaMetrics {
  readonly #started: Counter<'definition'>;
  readonly #ended: Counter<'definition' | 'outcome'>;
  readonly #duration: Histogram<'definition' | 'outcome'>;
  readonly #stepDuration: Histogram<'definition' | 'step' | 'outcome'>;
  readonly #retries: Counter<'definition' | 'step'>;
  readonly #compensations: Counter<'definition' | 'step'>;
  /** Definitions with runs seen here: their gauges report 0 rather than vanish once their runs end. */
  readonly #seen = new Set<string>();
  /** Definitions whose counters exist at 0 (see known). */
  readonly #zeroed = new Set<string>();

  constructor(registry: Registry, runs: RunCounts) {
    const registers = [registry];
    this.#started = new Counter({ name: Metrics.sagaStartedTotal, help: 'Saga runs started', labelNames: ['definition'], registers });
    this.#ended = new Counter({ name: Metrics.sagaEndedTotal, help: 'Saga runs ended, by outcome (succeeded, compensated, failed)', labelNames: ['definition', 'outcome'], registers });
    this.#duration = new Histogram({ name: Metrics.sagaDurationSeconds, help: 'Saga run duration from start to its terminal phase', labelNames: ['definition', 'outcome'], buckets: SAGA_BUCKETS, registers });
    this.#stepDuration = new Histogram({ name: Metrics.sagaStepDurationSeconds, help: 'Step duration from its first attempt to its outcome (succeeded, failed, timed_out)', labelNames: ['definition', 'step', 'outcome'], buckets: STEP_BUCKETS, registers });
    this.#retries = new Counter({ name: Metrics.sagaStepRetriesTotal, help: 'Retries of a step action (timeout) or compensation (failure or timeout)', labelNames: ['definition', 'step'], registers });
    this.#compensations = new Counter({ name: Metrics.sagaCompensationsTotal, help: 'Compensations started, per step', labelNames: ['definition', 'step'], registers });
    const seen = this.#seen;
    const gauge = (name: string, help: string, pick: (c: { inFlight: number; stuck: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['definition'],
        registers,
        collect() {
          const counts = runs.counts(Date.now());
          for (const k of counts.keys()) seen.add(k);
          for (const k of seen) this.set({ definition: k }, pick(counts.get(k) ?? { inFlight: 0, stuck: 0 }));
        },
      });
    gauge(Metrics.sagaInFlight, 'Saga runs not yet in a terminal phase (from the run store)', (c) => c.inFlight);
    gauge(Metrics.sagaStuck, 'Non-terminal saga runs past their deadline (from the run store)', (c) => c.stuck);
  }

  /**
   * `definition` (whose steps are `steps`) can run here: its counters exist at 0 from now on. rate()/increase() ignore
   * a series' first sample, so a counter born at its first increment hides that increment (the first failed run from
   * the SagaFailed alert, a first burst of compensations from the dashboards) — and one born at 0 with the first run
   * does too when the burst ends before the next scrape. Called for every stored definition at start-up, for one
   * defined here, and for any other on its first run here.
   */
  known(definition: string, steps: readonly string[]): void {
    if (this.#zeroed.has(definition)) return;
    this.#zeroed.add(definition);
    for (const outcome of SagaOutcomes) this.#ended.inc({ definition, outcome }, 0);
    for (const step of steps) {
      this.#retries.inc({ definition, step }, 0);
      this.#compensations.inc({ definition, step }, 0);
    }
  }

  /** A run of `definition` (whose steps are `steps`) started here. */
  started(definition: string, steps: readonly string[] = []): void {
    this.#seen.add(definition);
    this.known(definition, steps);
    this.#started.inc({ definition });
  }

  record(definition: string, effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'ended':
          this.#ended.inc({ definition, outcome: e.outcome });
          this.#duration.observe({ definition, outcome: e.outcome }, e.durationSeconds);
          break;
        case 'step-ended':
          this.#stepDuration.observe({ definition, step: e.step, outcome: e.outcome }, e.durationSeconds);
          break;
        case 'step-retried':
          this.#retries.inc({ definition, step: e.step });
          break;
        case 'compensation-started':
          this.#compensations.inc({ definition, step: e.step });
          break;
      }
    }
  }
}
