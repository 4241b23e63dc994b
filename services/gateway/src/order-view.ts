import type { OrderView, RunView, StoredOrderView } from '@sagamesh/contracts';

/**
 * The order as the public sees it; `saga` is `'unavailable'` when the engine could not be asked. The owner (a hash
 * of the placing key) stays out: the caller is the owner or an admin, and neither needs it.
 */
export function publicView(order: StoredOrderView, run: RunView | undefined | 'unavailable'): OrderView {
  const view: OrderView = {
    orderId: order.orderId,
    customerId: order.customerId,
    items: order.items.map((i) => ({ sku: i.sku, quantity: i.quantity, unitPrice: i.unitPrice })),
    total: order.total,
    status: order.status,
    createdAt: order.createdAt,
    updatedAt: order.updatedAt,
  };
  if (order.reason !== undefined) view.reason = order.reason;
  // Never a silent gap: a saga that could not be read is named as missing, unlike one not started yet.
  if (run === 'unavailable') view.degraded = ['saga'];
  else if (run) view.saga = { id: run.runId, phase: run.phase, steps: run.steps.map((s) => ({ name: s.name, status: s.status, attempts: s.attempts })) };
  return view;
}
