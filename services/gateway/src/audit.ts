import type { Audit, InventoryBooksReply, OrdersBooksReply, PaymentsBooksReply, ShippingBooksReply } from '@sagamesh/contracts';

/**
 * The books of every service, as `/admin/audit` shows them: order-origin at the top, k8s-origin under `k8s`.
 * Fields are copied one by one so that whatever else a service adds to its reply stays out of the contract.
 */
export function assembleAudit(parts: {
  inventory: InventoryBooksReply;
  payments: PaymentsBooksReply;
  shipping: ShippingBooksReply;
  orders: OrdersBooksReply;
}): Audit {
  const pay = (b: PaymentsBooksReply['order']) => ({ charged: b.charged, refunded: b.refunded });
  const ship = (b: ShippingBooksReply['order']) => ({ created: b.created, cancelled: b.cancelled });
  const o = parts.orders;
  return {
    skus: Object.fromEntries(
      Object.entries(parts.inventory.skus).map(([sku, s]) => [sku, { initial: s.initial, available: s.available, reserved: s.reserved, sold: s.sold, soldK8s: s.soldK8s }]),
    ),
    payments: pay(parts.payments.order),
    shipping: ship(parts.shipping.order),
    orders: {
      confirmed: { count: o.confirmed.count, total: o.confirmed.total },
      cancelled: { count: o.cancelled.count },
      pending: { count: o.pending.count },
      failed: { count: o.failed.count },
    },
    k8s: { payments: pay(parts.payments.k8s), shipping: ship(parts.shipping.k8s) },
  };
}
