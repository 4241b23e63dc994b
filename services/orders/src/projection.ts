/**
 * The read model's decisions, pure: how one stored event changes an order's view record, and what a
 * view adds to the books (the books are the sum over the views). Idempotent by stream
 * sequence: a record that has seen sequence S ignores S again.
 */
import type { Audit } from '@sagamesh/contracts';
import { evolve, type OrderSnapshot, type RecordedEvent } from './domain.ts';

/** The orders part of /admin/audit. */
export type OrderBooks = Audit['orders'];
/** What the read model stores per order: the view and the last stream sequence folded into it. */
export interface ViewRecord {
  seq: number;
  view: OrderSnapshot;
}

export const emptyBooks = (): OrderBooks => ({ confirmed: { count: 0, total: 0 }, cancelled: { count: 0 }, pending: { count: 0 }, failed: { count: 0 } });

/** What one order adds to the books in its current state. */
export function contribution(view: OrderSnapshot | undefined): OrderBooks {
  const b = emptyBooks();
  if (view === undefined) return b;
  if (view.status === 'PENDING') b.pending.count = 1;
  else if (view.status === 'CONFIRMED') b.confirmed = { count: 1, total: view.total };
  else if (view.status === 'CANCELLED') b.cancelled.count = 1;
  else b.failed.count = 1;
  return b;
}

/** A view record's part of the books as flat counters (the participant SDK's KvBooks sums them over the bucket). */
export function recordBooks(record: ViewRecord): Record<string, number> {
  const b = contribution(record.view);
  return { confirmedCount: b.confirmed.count, confirmedTotal: b.confirmed.total, cancelled: b.cancelled.count, pending: b.pending.count, failed: b.failed.count };
}

export function orderBooksOf(t: Readonly<Record<string, number>>): OrderBooks {
  return {
    confirmed: { count: t.confirmedCount ?? 0, total: t.confirmedTotal ?? 0 },
    cancelled: { count: t.cancelled ?? 0 },
    pending: { count: t.pending ?? 0 },
    failed: { count: t.failed ?? 0 },
  };
}

export type ProjectionStep =
  /** Already folded in (a redelivery or a replay), or changes nothing (an event after the end): nothing to do. */
  | { kind: 'skip' }
  /** An end event whose `placed` is not projected yet (consumers run concurrently): try again later. */
  | { kind: 'wait' }
  | { kind: 'apply'; next: ViewRecord };

export function planProjection(current: ViewRecord | undefined, rec: RecordedEvent): ProjectionStep {
  if (current !== undefined && current.seq >= rec.seq) return { kind: 'skip' };
  const after = evolve(current?.view, rec);
  if (after === undefined) return { kind: 'wait' };
  // Not written when unchanged: an ended order's record is settled (never written again), so the books need not remember it.
  if (after === current?.view) return { kind: 'skip' };
  return { kind: 'apply', next: { seq: rec.seq, view: after } };
}
