import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import pRetry from 'p-retry';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import {
  Fault,
  IDEMPOTENCY_KEY_PATTERN,
  InventoryBooksReply,
  isJetStreamUnavailable,
  isStoreFull,
  isTerminalPhase,
  isValidId,
  MAX_BODY_BYTES,
  newOrderId,
  OrdersBooksReply,
  PaymentsBooksReply,
  PlaceOrderRequest,
  PlaceOrderResponse,
  QuerySubjects,
  ShippingBooksReply,
  STORE_FULL,
  STORE_FULL_RETRY_AFTER_S,
  validator,
  ValidationError,
  type Validator,
} from '@sagamesh/contracts';
import { HttpError, type Logger, sendError, type ServiceMetrics } from '@sagamesh/runtime';
import type { Static, TSchema } from '@sinclair/typebox';
import { assembleAudit } from './audit.ts';
import { mayRead, type ApiKeys, type Caller } from './auth.ts';
import { UpstreamError } from './breakers.ts';
import { describeIssues, retryAfterSeconds } from './errors.ts';
import { bodyHashOf, kvKeyOf, orderIdFor, type IdempotencyStore, type StoredResponse } from './idempotency.ts';
import type { ProductCache } from './products.ts';
import { mountExplorer, type ExplorerDeps } from './explorer/routes.ts';
import { publicView } from './order-view.ts';
import { BadUpstreamReply, type EngineProgress, type HttpReply, type OrdersClient, type Queries } from './upstreams.ts';

/** The fault admin the routes need (the participant SDK's FaultStore). */
export interface FaultAdmin {
  list(): Fault[];
  put(fault: Fault): Promise<unknown>;
  clear(): Promise<void>;
}

export interface RouteDeps {
  log: Logger;
  metrics: ServiceMetrics;
  apiKeys: ApiKeys;
  limiter: RateLimiterAbstract;
  orders: OrdersClient;
  engine: EngineProgress;
  queries: Queries;
  products: ProductCache;
  idempotency: IdempotencyStore;
  /** Undefined when fault injection is off (FAULT_INJECTION=false): /admin/faults then answers 403. */
  faults: FaultAdmin | undefined;
  explorer: ExplorerDeps;
}

const placeOrderRequest = validator(PlaceOrderRequest, 'order request');
const placeOrderResponse = validator(PlaceOrderResponse, 'orders reply');
const faultRequest = validator(Fault, 'fault');
const booksReplies = {
  inventory: validator(InventoryBooksReply, 'inventory books'),
  payments: validator(PaymentsBooksReply, 'payments books'),
  shipping: validator(ShippingBooksReply, 'shipping books'),
  orders: validator(OrdersBooksReply, 'orders books'),
};
const idempotencyKeyRe = new RegExp(IDEMPOTENCY_KEY_PATTERN);

const SERVICE = 'gateway';
const REPLAYED_HEADER = 'Idempotent-Replayed';

function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}

function parseBody<T extends TSchema>(v: Validator<T>, body: unknown): Static<T> {
  try {
    return v.parse(body);
  } catch (err) {
    if (err instanceof ValidationError) throw new HttpError(400, 'invalid_request', describeIssues(err), { cause: err });
    throw err;
  }
}

/** A JSON body or a 4xx, decided before the body is read: 415 for another media type, 400 for no body at all. */
const requireJson: RequestHandler = (req, _res, next) => {
  const json = req.is('application/json'); // null: the request has no body
  if (json === null || req.get('content-length') === '0') return next(new HttpError(400, 'invalid_request', '/: a JSON body is required (Content-Type: application/json)'));
  if (json) return next();
  next(new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json (got ${req.get('content-type')})`));
};
const jsonBody = express.json({ limit: MAX_BODY_BYTES, strict: true });

function mountFaults(app: express.Router, d: RouteDeps, faults: FaultAdmin): void {
  app.put('/admin/faults', requireJson, jsonBody, async (req: Request, res: Response) => {
    const fault = parseBody(faultRequest, req.body);
    await storeCall(res, () => faults.put(fault));
    d.log.info({ fault, caller: callerOf(res).id }, 'fault set');
    res.json(fault);
  });
  app.get('/admin/faults', (_req: Request, res: Response) => {
    res.json(faults.list());
  });
  app.delete('/admin/faults', async (_req: Request, res: Response) => {
    await storeCall(res, () => faults.clear());
    d.log.info({ caller: callerOf(res).id }, 'faults cleared');
    res.status(204).end();
  });
}

/** orders' reply to `POST /orders` as the public answer (the one an idempotency key replays). */
function placedResponse(reply: HttpReply, sentOrderId: string, log: Logger): StoredResponse {
  if (reply.status >= 200 && reply.status < 300) {
    if (!placeOrderResponse.check(reply.body) || reply.body.orderId !== sentOrderId) {
      throw new BadUpstreamReply('orders', `POST /orders answered ${reply.status} without the order id ${sentOrderId}`);
    }
    const { orderId, status } = reply.body;
    return { status: 202, body: { orderId, status }, location: `/api/orders/${orderId}` };
  }
  // No room in orders' store: passed on as a 503 with its reason, and not kept as the key's answer (the caller may
  // try again once there is room).
  const refusal = (reply.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (reply.status === 503 && refusal?.code === STORE_FULL) throw new HttpError(503, STORE_FULL, String(refusal.message ?? 'the order store is full'));
  // A final refusal (422 unknown_sku, 409 order_exists): passed on, and replayed like a success.
  log.info({ orderId: sentOrderId, status: reply.status }, 'orders refused the order');
  const error = (reply.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const body =
    typeof error?.code === 'string' && typeof error.message === 'string'
      ? { error: { code: error.code, message: error.message } }
      : { error: { code: 'order_rejected', message: `orders answered ${reply.status}` } };
  return { status: reply.status, body };
}

function send(res: Response, r: StoredResponse): void {
  if (r.location) res.location(r.location);
  res.status(r.status).json(r.body);
}

/** The gateway's public API on the runtime's express app (which adds /livez, /readyz, /metrics, the JSON 404). */
export function mountRoutes(app: express.Router, d: RouteDeps): void {
  const rejected = (reason: 'rate_limit' | 'circuit_open') => d.metrics.requestsRejected.inc({ service: SERVICE, reason });

  const authenticate: RequestHandler = (req, res, next) => {
    const auth = d.apiKeys.authenticate(req.get('authorization'));
    if (!auth.ok) {
      res.set('WWW-Authenticate', 'Bearer');
      return sendError(res, 401, 'unauthorized', auth.message);
    }
    res.locals.caller = auth.caller;
    next();
  };

  const rateLimit: RequestHandler = async (_req, res, next) => {
    try {
      await d.limiter.consume(callerOf(res).scope);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) return next(err);
      rejected('rate_limit');
      res.set('Retry-After', retryAfterSeconds(err.msBeforeNext));
      return sendError(res, 429, 'rate_limited', 'too many requests for this API key; retry after the Retry-After seconds');
    }
    next();
  };

  /** `/admin/*` is for admin keys: a customer key is refused whatever the route (after the rate limit: refusals count too). */
  const requireAdmin: RequestHandler = (_req, res, next) => {
    if (callerOf(res).role === 'admin') return next();
    sendError(res, 403, 'forbidden', "/admin/* needs an admin key; this API key is a customer key (admin keys are the gateway's ADMIN_API_KEYS)");
  };

  app.use(['/api', '/admin'], authenticate, rateLimit);
  app.use('/admin', requireAdmin);

  /**
   * Places the order under `orderId`, owned by the caller's scope, and gives the public answer, or orders' refusal;
   * throws UpstreamError when orders is unreachable. The id is the gateway's (derived from the idempotency key, or
   * new), so a call to orders that is sent again reaches the same order.
   */
  const place = async (order: PlaceOrderRequest, orderId: string, caller: Caller): Promise<StoredResponse> =>
    placedResponse(await d.orders.place({ ...order, orderId, owner: caller.scope }), orderId, d.log);

  app.post('/api/orders', requireJson, jsonBody, async (req: Request, res: Response) => {
    const caller = callerOf(res);
    const idempotencyKey = req.get('idempotency-key');
    if (idempotencyKey !== undefined && !idempotencyKeyRe.test(idempotencyKey)) {
      throw new HttpError(400, 'invalid_request', 'Idempotency-Key: use 1-128 characters of A-Z, a-z, 0-9, _ and - (a UUID fits)');
    }
    const order = parseBody(placeOrderRequest, req.body);
    if (idempotencyKey === undefined) return send(res, await place(order, newOrderId(), caller));

    const key = kvKeyOf(caller.scope, idempotencyKey);
    const orderId = orderIdFor(caller.scope, idempotencyKey);
    const bodyHash = bodyHashOf(order);
    const startedAt = Date.now();
    const begun = await storeCall(res, () => d.idempotency.begin(key, bodyHash, orderId));
    if (begun.kind === 'mismatch') {
      throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different body; use a new key for a new order');
    }
    if (begun.kind === 'replay') {
      res.set(REPLAYED_HEADER, 'true');
      return send(res, begun.response);
    }
    let response: StoredResponse;
    try {
      response = await place(order, orderId, caller);
    } catch (err) {
      await d.idempotency.abandon(key, begun.revision);
      throw err;
    }
    await d.idempotency.complete(key, begun.revision, { bodyHash, orderId, startedAt, response });
    send(res, response);
  });

  app.get('/api/orders/:orderId', async (req: Request, res: Response) => {
    const orderId = String(req.params.orderId);
    if (!isValidId(orderId)) throw new HttpError(400, 'invalid_request', 'orderId: use 1-128 characters of A-Z, a-z, 0-9, _ and -');
    // Without the engine the order is still shown, marked degraded.
    const progress = () =>
      d.engine.get(orderId).catch((err: unknown) => {
        const open = err instanceof UpstreamError && err.kind === 'open';
        d.log[open ? 'debug' : 'warn']({ err, orderId }, 'saga progress unavailable: answering degraded');
        return 'unavailable' as const;
      });
    let [order, run] = await Promise.all([d.orders.get(orderId), progress()]);
    // Another customer's order is answered exactly like a missing one: its existence is not theirs to learn.
    if (!order || !mayRead(callerOf(res), order.owner)) throw new HttpError(404, 'not_found', `no order ${orderId}`);
    // Read side by side, the run may be read before it ended (or before it began: a GET right after the POST) and the
    // order after: an ended order's run has ended too, so a run in progress or not found is read once more rather
    // than shown against the order's final status. Not found twice, it is gone (past the engine's retention).
    if (order.status !== 'PENDING' && run !== 'unavailable' && (!run || !isTerminalPhase(run.phase))) run = await progress();
    res.json(publicView(order, run));
  });

  app.get('/api/products', async (_req: Request, res: Response) => {
    res.json(await d.products.get());
  });

  if (d.faults) mountFaults(app, d, d.faults);
  else {
    app.all('/admin/faults', () => {
      throw new HttpError(403, 'fault_injection_off', 'fault injection is off in this deployment (FAULT_INJECTION=false); a demo cluster turns it on with make up');
    });
  }

  app.get('/admin/audit', async (_req: Request, res: Response) => {
    const [inventory, payments, shipping, orders] = await Promise.all([
      d.queries.request('inventory', QuerySubjects.books('inventory'), booksReplies.inventory),
      d.queries.request('payments', QuerySubjects.books('payments'), booksReplies.payments),
      d.queries.request('shipping', QuerySubjects.books('shipping'), booksReplies.shipping),
      d.queries.request('orders', QuerySubjects.books('orders'), booksReplies.orders),
    ]);
    res.json(assembleAudit({ inventory, payments, shipping, orders }));
  });

  mountExplorer(app, d.explorer, d);

  // Errors of the routes above; anything else goes on to the runtime's handler (a logged 500).
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof UpstreamError) {
      if (err.kind === 'open') {
        // Once per request while open: debug, or a load test would flood the log.
        d.log.debug({ upstream: err.upstream }, 'circuit open: request rejected');
        rejected('circuit_open');
        res.set('Retry-After', retryAfterSeconds(err.retryAfterMs));
        return sendError(res, 503, 'upstream_unavailable', `${err.upstream} is unavailable (circuit open); retry later`);
      }
      d.log.warn({ upstream: err.upstream, kind: err.kind, err: err.cause ?? err }, 'upstream call failed');
      if (err.kind === 'timeout') return sendError(res, 504, 'upstream_timeout', `${err.upstream} did not answer in time; retry later`);
      if (err.kind === 'overloaded') {
        res.set('Retry-After', '1');
        return sendError(res, 503, 'overloaded', `${err.upstream} is shedding load; retry in a second`);
      }
      return sendError(res, 502, 'upstream_error', `${err.upstream} failed; retry later`);
    }
    if (err instanceof BadUpstreamReply) {
      d.log.error({ err }, 'upstream broke its contract');
      return sendError(res, 502, 'upstream_error', `${err.upstream} gave an invalid answer`);
    }
    if (err instanceof HttpError) {
      if (err.status >= 500) d.log.warn({ err: err.cause ?? err }, err.message);
      if (err.code === STORE_FULL) res.set('Retry-After', String(STORE_FULL_RETRY_AFTER_S));
      return sendError(res, err.status, err.code, err.message);
    }
    // body-parser's errors and the rest: the runtime's handler (one mapping of bad bodies for every service).
    next(err);
  });
}

/** How long a request waits for its store to come back before answering 503 (a reconnect plus a leader election). */
const STORE_RETRY_MS = 8000;

/**
 * A JetStream/KV call on behalf of a request (each is safe to repeat: a claim that was stored but not acknowledged is
 * found again as this request's own). While the bus cannot serve it (isJetStreamUnavailable, as the consumers judge
 * it: a reconnect, an R3 leader election) it is tried again for up to STORE_RETRY_MS, then a 503 the client may retry.
 */
async function storeCall<T>(res: Response, fn: () => Promise<T>): Promise<T> {
  try {
    return await pRetry(fn, { retries: 6, minTimeout: 100, maxTimeout: 2000, maxRetryTime: STORE_RETRY_MS, shouldRetry: ({ error }) => isJetStreamUnavailable(error) });
  } catch (err) {
    if (isStoreFull(err)) throw new HttpError(503, STORE_FULL, 'the idempotency key store is full: orders with a new Idempotency-Key are refused until it has more room', { cause: err });
    res.set('Retry-After', '1');
    throw new HttpError(503, 'store_unavailable', 'the gateway cannot reach its store right now; retry later', { cause: err });
  }
}
