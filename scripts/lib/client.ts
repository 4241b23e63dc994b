/** A small client of the gateway's public API (DESIGN "The public HTTP API"), for demo, bench and tests. */
import { ExplorerPaths, type Audit, type DeadLetterView, type Fault, type OrderView, type PlaceOrderRequest } from '@sagamesh/contracts';

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown, what: string) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * `apiKey` places and reads orders; `adminKey` (default `apiKey`) calls /admin/*. A customer key reads only the
 * orders it placed; an admin key reads every order and may call /admin/* (make dev's dev key is one).
 */
export class GatewayClient {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly adminKey: string;
  constructor(baseUrl: string, apiKey: string, adminKey = apiKey) {
    this.baseUrl = baseUrl;
    this.apiKey = apiKey;
    this.adminKey = adminKey;
  }

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const key = path.startsWith('/admin/') ? this.adminKey : this.apiKey;
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text for the error message
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async placeOrder(order: PlaceOrderRequest, idempotencyKey?: string): Promise<string> {
    const res = await this.call<{ orderId: string }>('POST', '/api/orders', order, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
    if (res.status !== 202) throw new ApiError(res.status, res.body, 'POST /api/orders');
    return res.body.orderId;
  }

  async getOrder(orderId: string): Promise<OrderView | undefined> {
    const res = await this.call<OrderView>('GET', `/api/orders/${encodeURIComponent(orderId)}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new ApiError(res.status, res.body, `GET /api/orders/${orderId}`);
    return res.body;
  }

  async putFault(fault: Fault): Promise<void> {
    const res = await this.call('PUT', '/admin/faults', fault);
    if (res.status >= 300) throw new ApiError(res.status, res.body, 'PUT /admin/faults');
  }

  async clearFaults(): Promise<void> {
    const res = await this.call('DELETE', '/admin/faults');
    if (res.status >= 300) throw new ApiError(res.status, res.body, 'DELETE /admin/faults');
  }

  async audit(): Promise<Audit> {
    const res = await this.call<Audit>('GET', '/admin/audit');
    if (res.status !== 200) throw new ApiError(res.status, res.body, 'GET /admin/audit');
    return res.body;
  }

  /** The newest dead letters (at most `limit`) and how many the stream holds. */
  async deadLetters(limit = 100): Promise<{ total: number; deadLetters: DeadLetterView[] }> {
    const res = await this.call<{ total: number; deadLetters: DeadLetterView[] }>('GET', `${ExplorerPaths.deadLetters}?limit=${limit}`);
    if (res.status !== 200) throw new ApiError(res.status, res.body, `GET ${ExplorerPaths.deadLetters}`);
    return res.body;
  }

  /** Polls until every order has left PENDING (its saga ended); returns the final views. */
  async waitForOrders(orderIds: readonly string[], timeoutMs: number, onProgress?: (done: number, total: number) => void): Promise<Map<string, OrderView>> {
    const done = new Map<string, OrderView>();
    const deadline = Date.now() + timeoutMs;
    while (done.size < orderIds.length) {
      const pending = orderIds.filter((id) => !done.has(id));
      for (let i = 0; i < pending.length; i += 50) {
        const batch = pending.slice(i, i + 50);
        const views = await Promise.all(batch.map((id) => this.getOrder(id).catch(() => undefined)));
        // Done: ended, and read whole (a view that says `degraded` is read again once its parts answer).
        views.forEach((v, j) => v && v.status !== 'PENDING' && !v.degraded?.length && done.set(batch[j]!, v));
      }
      onProgress?.(done.size, orderIds.length);
      if (done.size === orderIds.length) break;
      if (Date.now() > deadline) {
        const stuck = orderIds.filter((id) => !done.has(id));
        throw new Error(`${stuck.length} of ${orderIds.length} orders still PENDING after ${timeoutMs} ms (e.g. ${stuck.slice(0, 3).join(', ')})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return done;
  }
}

/** Order status ↔ saga phase, per the contract. */
export const STATUS_OF_PHASE = { Succeeded: 'CONFIRMED', Compensated: 'CANCELLED', Failed: 'FAILED' } as const;

/**
 * The books' invariants (DESIGN "/admin/audit") over the order-origin effects, at rest, from the books alone
 * (for a platform others also placed orders on). Returns the violations (empty when the books are right).
 */
export function booksViolations(audit: Audit): string[] {
  const v: string[] = [];
  for (const [sku, s] of Object.entries(audit.skus)) {
    if (s.available + s.reserved + s.sold + s.soldK8s !== s.initial) v.push(`${sku}: available ${s.available} + reserved ${s.reserved} + sold ${s.sold} + soldK8s ${s.soldK8s} != initial ${s.initial}`);
    for (const k of ['available', 'reserved', 'sold', 'soldK8s'] as const) if (s[k] < 0) v.push(`${sku}: ${k} is negative (${s[k]})`);
    if (s.reserved !== 0) v.push(`${sku}: ${s.reserved} still reserved at rest`);
  }
  if (audit.payments.charged - audit.payments.refunded !== audit.orders.confirmed.total)
    v.push(`payments: charged ${audit.payments.charged} - refunded ${audit.payments.refunded} != confirmed total ${audit.orders.confirmed.total}`);
  if (audit.shipping.created - audit.shipping.cancelled !== audit.orders.confirmed.count)
    v.push(`shipping: created ${audit.shipping.created} - cancelled ${audit.shipping.cancelled} != confirmed orders ${audit.orders.confirmed.count}`);
  if (audit.orders.failed.count !== 0) v.push(`${audit.orders.failed.count} orders FAILED`);
  if (audit.orders.pending.count !== 0) v.push(`${audit.orders.pending.count} orders still PENDING`);
  return v;
}

/** The books' invariants, and that they agree with `orders`: every order placed on the platform, as the API shows them. */
export function auditViolations(audit: Audit, orders: readonly OrderView[]): string[] {
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  const soldBySku = new Map<string, number>();
  for (const o of confirmed) for (const it of o.items) soldBySku.set(it.sku, (soldBySku.get(it.sku) ?? 0) + it.quantity);
  const confirmedTotal = confirmed.reduce((a, o) => a + o.total, 0);
  return [...booksViolations(audit), ...crossCheck(audit, soldBySku, confirmedTotal, confirmed.length)];
}

/**
 * auditViolations once the books are at rest: reservations turn into sales by choreography a moment after a saga
 * ends, so the books are read again (every 250 ms, up to `timeoutMs`) until they balance; the last violations if not.
 */
export async function booksAtRest(api: GatewayClient, orders: readonly OrderView[], timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const violations = auditViolations(await api.audit(), orders);
    if (violations.length === 0 || Date.now() > deadline) return violations;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The books agree with the orders the caller placed (when it placed them all). */
function crossCheck(audit: Audit, soldBySku: Map<string, number>, confirmedTotal: number, confirmedCount: number): string[] {
  const v: string[] = [];
  if (audit.orders.confirmed.count !== confirmedCount) v.push(`orders: ${audit.orders.confirmed.count} confirmed in the books, ${confirmedCount} seen through the API`);
  if (audit.orders.confirmed.total !== confirmedTotal) v.push(`orders: confirmed total ${audit.orders.confirmed.total} in the books, ${confirmedTotal} through the API`);
  for (const [sku, s] of Object.entries(audit.skus)) {
    const expected = soldBySku.get(sku) ?? 0;
    if (s.sold !== expected) v.push(`${sku}: sold ${s.sold} != confirmed orders' quantity ${expected}`);
  }
  return v;
}

/** Each order's status matches its saga's phase. */
export function statusMismatches(orders: readonly OrderView[]): string[] {
  return orders
    .filter((o) => !o.saga || STATUS_OF_PHASE[o.saga.phase as keyof typeof STATUS_OF_PHASE] !== o.status)
    .map((o) => `${o.orderId}: status ${o.status}, saga ${o.saga ? o.saga.phase : 'missing'}`);
}
