import { Type, type Static } from '@sinclair/typebox';
import { Fault } from './faults.ts';
import { SagaPhases, StepStatuses } from './saga.ts';

/** The gateway's public HTTP API (a contract: the README documents it too). */
export const OrderItemRequest = Type.Object(
  {
    sku: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    quantity: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false },
);
export const PlaceOrderRequest = Type.Object(
  {
    customerId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }),
    items: Type.Array(OrderItemRequest, { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false },
);
export type PlaceOrderRequest = Static<typeof PlaceOrderRequest>;
export const MAX_BODY_BYTES = 16 * 1024;

export const OrderStatuses = ['PENDING', 'CONFIRMED', 'CANCELLED', 'FAILED'] as const;
export type OrderStatus = (typeof OrderStatuses)[number];

export const PlaceOrderResponse = Type.Object({ orderId: Type.String(), status: Type.Literal('PENDING') });
export type PlaceOrderResponse = Static<typeof PlaceOrderResponse>;

/** Parts of the order view read from another dependency than orders: `saga` comes from the saga engine. */
export const DegradedParts = ['saga'] as const;

export const OrderLine = Type.Object({ sku: Type.String(), quantity: Type.Integer(), unitPrice: Type.Integer() });
export const OrderView = Type.Object({
  orderId: Type.String(),
  customerId: Type.String(),
  items: Type.Array(OrderLine),
  total: Type.Integer({ description: 'cents' }),
  status: Type.Union(OrderStatuses.map((s) => Type.Literal(s))),
  reason: Type.Optional(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  saga: Type.Optional(
    Type.Object({
      id: Type.String(),
      phase: Type.Union(SagaPhases.map((p) => Type.Literal(p))),
      steps: Type.Array(Type.Object({ name: Type.String(), status: Type.Union(StepStatuses.map((s) => Type.Literal(s))), attempts: Type.Integer() })),
    }),
  ),
  degraded: Type.Optional(
    Type.Array(Type.Union(DegradedParts.map((p) => Type.Literal(p))), {
      minItems: 1,
      description: 'The parts of the view the gateway could not read just now (their dependency did not answer): absent from this answer, not absent from the order.',
    }),
  ),
});
export type OrderView = Static<typeof OrderView>;

export const Product = Type.Object({ sku: Type.String(), name: Type.String(), price: Type.Integer(), available: Type.Integer() });
export type Product = Static<typeof Product>;

export const PutFaultRequest = Fault;

/** Error body of every 4xx/5xx. */
export const ApiError = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });
export type ApiError = Static<typeof ApiError>;

const OriginBooks = Type.Object({
  payments: Type.Object({ charged: Type.Integer(), refunded: Type.Integer() }),
  shipping: Type.Object({ created: Type.Integer(), cancelled: Type.Integer() }),
});
export const Audit = Type.Object({
  skus: Type.Record(Type.String(), Type.Object({ initial: Type.Integer(), available: Type.Integer(), reserved: Type.Integer(), sold: Type.Integer(), soldK8s: Type.Integer() })),
  payments: Type.Object({ charged: Type.Integer(), refunded: Type.Integer() }),
  shipping: Type.Object({ created: Type.Integer(), cancelled: Type.Integer() }),
  orders: Type.Object({
    confirmed: Type.Object({ count: Type.Integer(), total: Type.Integer() }),
    cancelled: Type.Object({ count: Type.Integer() }),
    pending: Type.Object({ count: Type.Integer() }),
    failed: Type.Object({ count: Type.Integer() }),
  }),
  k8s: OriginBooks,
});
export type Audit = Static<typeof Audit>;

/**
 * Queries over core NATS request/reply (queue group = the service's name): each service answers its
 * own books for /admin/audit (`*BooksReply`), and inventory answers the product list.
 */
export const QuerySubjects = {
  books: (service: string) => `query.${service}.books`,
  products: 'query.inventory.products',
} as const;
