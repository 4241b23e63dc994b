/**
 * Inventory's decisions, pure: how a reservation changes the per-sku counters, what a command does
 * given the reservation record it finds, and how a round of changes is planned: one record write per
 * change, each carrying the counters it leaves behind (store.ts commits them in one chained sequence).
 */
import { StepErrorCodes, type RunOrigin, type StepError, type StepResult } from '@sagamesh/contracts';

/** The books of one sku. Invariant: available + reserved + sold + soldK8s = initial, none negative. */
export interface SkuStock {
  initial: number;
  available: number;
  reserved: number;
  sold: number;
  soldK8s: number;
}

export interface Item {
  sku: string;
  quantity: number;
}

export type Stocks = ReadonlyMap<string, SkuStock>;

export function initialStock(initial: number): SkuStock {
  return { initial, available: initial, reserved: 0, sold: 0, soldK8s: 0 };
}

/** One line per sku (quantities of repeated skus summed), sorted by sku so every writer sees the same order. */
export function mergeItems(items: readonly Item[]): Item[] {
  const bySku = new Map<string, number>();
  for (const { sku, quantity } of items) bySku.set(sku, (bySku.get(sku) ?? 0) + quantity);
  return [...bySku.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sku, quantity]) => ({ sku, quantity }));
}

export type ReserveDecision =
  | { ok: true; stocks: Map<string, SkuStock> }
  | { ok: false; error: StepError };

/** All items or none: the new counters of every sku touched, or why the reservation is refused. */
export function reserveDecision(stocks: Stocks, items: readonly Item[]): ReserveDecision {
  const next = new Map<string, SkuStock>();
  for (const { sku, quantity } of mergeItems(items)) {
    const s = stocks.get(sku);
    if (!s) return { ok: false, error: { code: StepErrorCodes.unknownSku, message: `sku ${sku} is not in the catalogue` } };
    if (s.available < quantity) {
      return { ok: false, error: { code: StepErrorCodes.outOfStock, message: `sku ${sku}: ${quantity} requested, ${s.available} available` } };
    }
    next.set(sku, { ...s, available: s.available - quantity, reserved: s.reserved + quantity });
  }
  return { ok: true, stocks: next };
}

/** A reserved quantity that is not there means the books are corrupt: never write on top of that. */
export class BooksCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BooksCorruptError';
  }
}

function moveReserved(stocks: Stocks, items: readonly Item[], to: 'available' | 'sold' | 'soldK8s'): Map<string, SkuStock> {
  const next = new Map<string, SkuStock>();
  for (const { sku, quantity } of mergeItems(items)) {
    const s = stocks.get(sku);
    if (!s || s.reserved < quantity) {
      throw new BooksCorruptError(`sku ${sku}: cannot move ${quantity} reserved to ${to}, ${s?.reserved ?? 'no'} reserved`);
    }
    next.set(sku, { ...s, reserved: s.reserved - quantity, [to]: s[to] + quantity });
  }
  return next;
}

/** A released reservation goes back to available. */
export function releaseStocks(stocks: Stocks, items: readonly Item[]): Map<string, SkuStock> {
  return moveReserved(stocks, items, 'available');
}

/** A succeeded run's reservation becomes a sale, counted per origin. */
export function sellStocks(stocks: Stocks, items: readonly Item[], origin: RunOrigin): Map<string, SkuStock> {
  return moveReserved(stocks, items, origin === 'order' ? 'sold' : 'soldK8s');
}

// ---- The reservation record: one KV entry per reserve key (`<runId>.<step>`) ----

/**
 * `reserved` holds stock; `failed` never held any (its action result is the refusal);
 * `released` / `sold` are final; `tombstone` = the release came first, so a late reserve is refused.
 */
export type ReservationStatus = 'reserved' | 'failed' | 'released' | 'sold' | 'tombstone';

export interface Reservation {
  origin: RunOrigin;
  items: Item[];
  status: ReservationStatus;
  /** The stored reply of the reserve (absent on a tombstone). */
  action?: StepResult;
  /** The stored reply of the release. */
  compensation?: StepResult;
}

/** What a repeated reserve answers, given the record under its key: the stored result, or the tombstone's refusal. */
export function storedReserveResult(rec: Reservation): StepResult {
  if (rec.action) return rec.action;
  return {
    outcome: 'failed',
    error: { code: StepErrorCodes.compensatedBeforeAction, message: 'this step was compensated before its action arrived; the late action is refused' },
  };
}

export type ReleaseStep =
  | { kind: 'tombstone'; result: StepResult }
  | { kind: 'replay'; result: StepResult }
  | { kind: 'release'; result: StepResult }
  | { kind: 'noop'; result: StepResult }
  | { kind: 'refuse'; result: StepResult };

/** What a release does given the record of the reserve it undoes. */
export function onRelease(rec: Reservation | undefined): ReleaseStep {
  if (!rec) return { kind: 'tombstone', result: { outcome: 'succeeded', output: { released: [] } } };
  if (rec.compensation) return { kind: 'replay', result: rec.compensation };
  switch (rec.status) {
    case 'reserved':
      return { kind: 'release', result: { outcome: 'succeeded', output: { released: rec.items } } };
    case 'sold':
      return {
        kind: 'refuse',
        result: { outcome: 'failed', error: { code: StepErrorCodes.alreadySold, message: 'the reservation was sold when its run succeeded; nothing to release' } },
      };
    default:
      // failed: nothing was held (released and tombstone records always carry their compensation)
      return { kind: 'noop', result: { outcome: 'succeeded', output: { released: [] } } };
  }
}

/** Whether a succeeded run's reservation is still to be sold (a repeated event finds it sold). */
export function toSell(rec: Reservation | undefined): rec is Reservation {
  return rec?.status === 'reserved';
}

// ---- A round of changes, committed together ----

/** A change to one reservation record (and the counters it moves), decided on the record at `expect`. */
export type Change =
  /** A new reservation: all items or a refusal (out of stock, unknown sku). The record must not exist. */
  | { kind: 'reserve'; key: string; origin: RunOrigin; items: Item[] }
  /** An injected failure, stored as the reserve's result. The record must not exist. */
  | { kind: 'refuse'; key: string; origin: RunOrigin; items: Item[]; error: StepError }
  /** The release came first. The record must not exist. */
  | { kind: 'tombstone'; key: string; origin: RunOrigin; result: StepResult }
  | { kind: 'release'; key: string; record: Reservation; expect: number; result: StepResult }
  | { kind: 'sell'; key: string; record: Reservation; expect: number };

export type Planned =
  | {
      ok: true;
      record: Reservation;
      expect: number;
      result?: StepResult;
      /** The counters of the skus this change moves, right after it (none when it moves no stock). */
      stock?: Map<string, SkuStock>;
    }
  | { ok: false; error: BooksCorruptError };

export interface Plan {
  /** Per change, in order. */
  planned: Planned[];
  /** The final counters of every sku the round changes. */
  stocks: Map<string, SkuStock>;
}

/** Applies the changes one after the other to the counters; a change that cannot apply changes nothing. */
export function planRound(stocks: Stocks, changes: readonly Change[]): Plan {
  const current = new Map(stocks);
  const changed = new Map<string, SkuStock>();
  const take = (m: Map<string, SkuStock>) => {
    for (const [sku, s] of m) {
      current.set(sku, s);
      changed.set(sku, s);
    }
  };
  const planned = changes.map((c): Planned => {
    switch (c.kind) {
      case 'reserve': {
        const items = mergeItems(c.items);
        const d = reserveDecision(current, items);
        if (d.ok) {
          take(d.stocks);
          const result: StepResult = { outcome: 'succeeded', output: { reservation: c.key, items } };
          return { ok: true, record: { origin: c.origin, items, status: 'reserved', action: result }, expect: 0, result, stock: d.stocks };
        }
        const result: StepResult = { outcome: 'failed', error: d.error };
        return { ok: true, record: { origin: c.origin, items, status: 'failed', action: result }, expect: 0, result };
      }
      case 'refuse': {
        const result: StepResult = { outcome: 'failed', error: c.error };
        return { ok: true, record: { origin: c.origin, items: mergeItems(c.items), status: 'failed', action: result }, expect: 0, result };
      }
      case 'tombstone':
        return { ok: true, record: { origin: c.origin, items: [], status: 'tombstone', compensation: c.result }, expect: 0, result: c.result };
      case 'release':
      case 'sell': {
        let moved: Map<string, SkuStock>;
        try {
          moved = c.kind === 'release' ? releaseStocks(current, c.record.items) : sellStocks(current, c.record.items, c.record.origin);
          take(moved);
        } catch (err) {
          if (err instanceof BooksCorruptError) return { ok: false, error: err };
          throw err;
        }
        const record: Reservation =
          c.kind === 'release' ? { ...c.record, status: 'released', compensation: c.result } : { ...c.record, status: 'sold' };
        return { ok: true, record, expect: c.expect, ...(c.kind === 'release' ? { result: c.result } : {}), stock: moved };
      }
    }
  });
  return { planned, stocks: changed };
}
