/**
 * The read model's decisions, pure: how one stored event changes an order's view record and the
 * audit books. Idempotent by stream sequence: a record that has seen sequence S ignores S again.
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

export function addBooks(a: OrderBooks, b: OrderBooks, sign: 1 | -1 = 1): OrderBooks {
  return {
    confirmed: { count: a.confirmed.count + sign * b.confirmed.count, total: a.confirmed.total + sign * b.confirmed.total },
    cancelled: { count: a.cancelled.count + sign * b.cancelled.count },
    pending: { count: a.pending.count + sign * b.pending.count },
    failed: { count: a.failed.count + sign * b.failed.count },
  };
}

export const isZeroBooks = (b: OrderBooks): boolean =>
  b.confirmed.count === 0 && b.confirmed.total === 0 && b.cancelled.count === 0 && b.pending.count === 0 && b.failed.count === 0;

export type ProjectionStep =
  /** Already folded in (a redelivery or a replay): nothing to do. */
  | { kind: 'skip' }
  /** An end event whose `placed` is not projected yet (consumers run concurrently): try again later. */
  | { kind: 'wait' }
  | { kind: 'apply'; next: ViewRecord; delta: OrderBooks };

export function planProjection(current: ViewRecord | undefined, rec: RecordedEvent): ProjectionStep {
  if (current !== undefined && current.seq >= rec.seq) return { kind: 'skip' };
  const before = current?.view;
  const after = evolve(before, rec);
  if (after === undefined) return { kind: 'wait' };
  return { kind: 'apply', next: { seq: rec.seq, view: after }, delta: addBooks(contribution(after), contribution(before), -1) };
}
