import { Type, type Static } from '@sinclair/typebox';

/**
 * The well-known API key the gateway accepts only when DEV_MODE=true (`make dev` prints it, `make load`
 * uses it). Never valid in a deployment without DEV_MODE.
 */
export const DEV_API_KEY = 'dev-key-sagamesh';

/** `Idempotency-Key` header of `POST /api/orders`: 1–128 characters of [A-Za-z0-9_-] (a UUID fits). */
export const IDEMPOTENCY_KEY_PATTERN = '^[A-Za-z0-9_-]{1,128}$';

/** Replies to `query.<service>.books` (QuerySubjects.books), which the gateway assembles into `Audit`. */
const SkuBooks = Type.Object({ initial: Type.Integer(), available: Type.Integer(), reserved: Type.Integer(), sold: Type.Integer(), soldK8s: Type.Integer() });
export const InventoryBooksReply = Type.Object({ skus: Type.Record(Type.String(), SkuBooks) });
export type InventoryBooksReply = Static<typeof InventoryBooksReply>;
const PaymentBooks = Type.Object({ charged: Type.Integer(), refunded: Type.Integer() });
/** payments: `order` = order-origin books, `k8s` = runs started from Saga resources. */
export const PaymentsBooksReply = Type.Object({ order: PaymentBooks, k8s: PaymentBooks });
export type PaymentsBooksReply = Static<typeof PaymentsBooksReply>;
const ShippingBooks = Type.Object({ created: Type.Integer(), cancelled: Type.Integer() });
export const ShippingBooksReply = Type.Object({ order: ShippingBooks, k8s: ShippingBooks });
export type ShippingBooksReply = Static<typeof ShippingBooksReply>;
export const OrdersBooksReply = Type.Object({
  confirmed: Type.Object({ count: Type.Integer(), total: Type.Integer() }),
  cancelled: Type.Object({ count: Type.Integer() }),
  pending: Type.Object({ count: Type.Integer() }),
  failed: Type.Object({ count: Type.Integer() }),
});
export type OrdersBooksReply = Static<typeof OrdersBooksReply>;
