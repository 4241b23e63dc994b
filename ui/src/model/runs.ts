// The live list's model: the runs the stream delivered, the filters, and the page shown. Pure.
import type { RunOrigin, RunSummary, SagaPhase } from '@sagamesh/contracts';

/** The phases the list filters on, in the order a run goes through them. */
export const LIST_PHASES = ['Pending', 'Running', 'Compensating', 'Succeeded', 'Compensated', 'Failed'] as const satisfies readonly SagaPhase[];
export const ORIGINS = ['order', 'k8s'] as const satisfies readonly RunOrigin[];

export interface RunFilter {
  /** Empty: every phase. */
  phases: readonly SagaPhase[];
  origin?: RunOrigin;
  /** A definition key, exactly. */
  definition?: string;
}

/**
 * The runs known, by id, each at its highest version. A snapshot replaces everything; a delta updates what it
 * names; a version older than the one held is ignored (a delta may cross a snapshot).
 */
export class RunModel {
  #runs = new Map<string, RunSummary>();
  capacity = 0;

  get size(): number {
    return this.#runs.size;
  }

  snapshot(runs: readonly RunSummary[], capacity: number): void {
    this.capacity = capacity;
    this.#runs = new Map(runs.map((r) => [r.runId, r]));
  }

  apply(runs: readonly RunSummary[]): void {
    for (const r of runs) {
      const had = this.#runs.get(r.runId);
      if (!had || had.version < r.version) this.#runs.set(r.runId, r);
    }
    // The server holds `capacity` runs; the page keeps no more (the oldest leave first).
    if (this.capacity > 0 && this.#runs.size > this.capacity) {
      for (const r of newestFirst([...this.#runs.values()]).slice(this.capacity)) this.#runs.delete(r.runId);
    }
  }

  get(runId: string): RunSummary | undefined {
    return this.#runs.get(runId);
  }

  all(): RunSummary[] {
    return [...this.#runs.values()];
  }
}

/** Newest first by start time, the run id breaking ties so the order is stable. */
export function newestFirst(runs: RunSummary[]): RunSummary[] {
  return runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
}

export function matches(r: RunSummary, f: RunFilter): boolean {
  return (f.phases.length === 0 || f.phases.includes(r.phase)) && (!f.origin || r.origin === f.origin) && (!f.definition || r.definitionKey === f.definition);
}

export interface Page {
  rows: RunSummary[];
  /** Runs that match the filter, on every page. */
  total: number;
  page: number;
  pages: number;
}

/** The matching runs, newest first, cut to one page of `size` (the page number is clamped to what exists). */
export function pageOf(runs: readonly RunSummary[], f: RunFilter, page: number, size: number): Page {
  const hits = newestFirst(runs.filter((r) => matches(r, f)));
  const pages = Math.max(1, Math.ceil(hits.length / size));
  const p = Math.min(Math.max(0, page), pages - 1);
  return { rows: hits.slice(p * size, (p + 1) * size), total: hits.length, page: p, pages };
}

/** How many runs are in each phase (over every run held, before the filter). */
export function phaseCounts(runs: readonly RunSummary[]): Record<SagaPhase, number> {
  const c = Object.fromEntries(LIST_PHASES.map((p) => [p, 0])) as Record<SagaPhase, number>;
  for (const r of runs) c[r.phase]++;
  return c;
}

/** The definition keys seen, sorted: the choices of the definition filter. */
export function definitionsOf(runs: readonly RunSummary[]): string[] {
  return [...new Set(runs.map((r) => r.definitionKey))].sort();
}
