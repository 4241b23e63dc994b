import pRetry from 'p-retry';
import http from 'node:http';
import https from 'node:https';
import {
  OrdersPaths,
  QuerySubjects,
  STORE_FULL,
  StoredOrderView,
  validator,
  ValidationError,
  type InternalPlaceOrderRequest,
  type RunView,
} from '@sagamesh/contracts';
import { headers as natsHeaders, injectTrace, KEEP_ALIVE, type NatsConnection, SpanKind, withSpan } from '@sagamesh/runtime';
import { EngineClient, EngineRequestError } from '@sagamesh/participant';
import { UpstreamOverloaded, UpstreamTimeout, type Breakers, type Upstream } from './breakers.ts';

/** A timeout anywhere in the cause chain (fetch's AbortSignal.timeout and nats.js both name it TimeoutError). */
function isTimeout(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (e.name === 'TimeoutError') return true;
  return false;
}

/** The upstream answered, but not in the shape the contract promises. */
export class BadUpstreamReply extends Error {
  readonly upstream: Upstream;
  constructor(upstream: Upstream, message: string, opts?: { cause?: unknown }) {
    super(`${upstream}: ${message}`, opts);
    this.name = 'BadUpstreamReply';
    this.upstream = upstream;
  }
}

export interface HttpReply {
  status: number;
  body: unknown;
}

const orderView = validator(StoredOrderView, 'order view from orders');

/** A 5xx from an orders replica (going away, not ready, or failing): the call is idempotent, another try may answer. */
class ServerError extends Error {
  readonly reply: { status: number; text: string };
  constructor(message: string, reply: { status: number; text: string }) {
    super(message);
    this.name = 'ServerError';
    this.reply = reply;
  }
}

/**
 * The request most likely reached no server that acted on it: the connection was refused, or a pooled
 * keep-alive socket was reset or hung up before any answer (the server closed it idle as we sent, or its
 * process went away).
 */
export class NotDelivered extends Error {
  constructor(message: string, opts: { cause: unknown }) {
    super(message, opts);
    this.name = 'NotDelivered';
  }
}

function notDelivered(req: http.ClientRequest, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  // "socket hang up" carries ECONNRESET too.
  return code === 'ECONNREFUSED' || (req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE'));
}

/**
 * One HTTP exchange over a keep-alive agent (node:http, not fetch: fetch's streams, AbortSignal
 * timers and per-request objects cost about as much CPU as the whole gateway route at load).
 * Rejects with UpstreamTimeout past `timeoutMs`, with NotDelivered when no server likely saw the request.
 */
function exchange(agent: http.Agent | false, url: URL, method: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => (clearTimeout(timer), reject(err)));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(new UpstreamTimeout(`${method} ${url.pathname}: no answer within ${timeoutMs}ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(notDelivered(req, err) ? new NotDelivered(`${method} ${url.pathname}: ${err.message} (not delivered)`, { cause: err }) : err);
    });
    req.end(body);
  });
}

/**
 * The orders service over HTTP, through the `orders` breaker; 5xx, network errors and timeouts count as failures.
 * Every call is idempotent — a GET, or a POST that carries the order id (orders places the same id with the
 * same body once) — so a call that failed in any way is tried up to ORDERS_ATTEMPTS times before it counts as a failure.
 */
export const ORDERS_ATTEMPTS = 4;
/** Connections to orders at most, per gateway process. */
const ORDERS_MAX_SOCKETS = 256;

export class OrdersClient {
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  readonly #breakers: Breakers;
  readonly #agent: http.Agent;

  constructor(baseUrl: string, timeoutMs: number, breakers: Breakers) {
    this.#baseUrl = baseUrl.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
    this.#breakers = breakers;
    // An idle timeout also makes the agent honour the server's Keep-Alive hint (Node ignores it without one).
    // Sockets bounded: past them requests queue in the agent, and the in-flight cap in front bounds that queue.
    const agentOptions = { keepAlive: true, timeout: KEEP_ALIVE.clientIdleMs, maxSockets: ORDERS_MAX_SOCKETS };
    this.#agent = baseUrl.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Any 2xx/4xx reply is returned as is (the caller decides); 5xx and no reply throw UpstreamError. */
  place(order: InternalPlaceOrderRequest & { orderId: string }): Promise<HttpReply> {
    return this.#request('POST', OrdersPaths.place, order);
  }

  /** The order (with its owner), or undefined when orders does not know it. */
  async get(orderId: string): Promise<StoredOrderView | undefined> {
    const reply = await this.#request('GET', OrdersPaths.order(encodeURIComponent(orderId)));
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) throw new BadUpstreamReply('orders', `GET /orders/:id answered ${reply.status}`);
    try {
      return orderView.parse(reply.body);
    } catch (err) {
      if (err instanceof ValidationError) throw new BadUpstreamReply('orders', err.message, { cause: err });
      throw err;
    }
  }

  /** Closes the idle keep-alive connections (shutdown). */
  close(): void {
    this.#agent.destroy();
  }

  #request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpReply> {
    return this.#breakers.call('orders', () =>
      // The call as a whole (breaker, retries): INTERNAL; each attempt is a CLIENT span of the HTTP instrumentation
      // (libs/runtime/src/otel-http.ts), which also puts its traceparent on the request.
      withSpan(`${method} orders`, { kind: SpanKind.INTERNAL, attributes: { 'http.request.method': method, 'url.path': path } }, async () => {
        const headers: Record<string, string> = { accept: 'application/json' };
        const payload = body === undefined ? undefined : JSON.stringify(body);
        if (payload !== undefined) {
          headers['content-type'] = 'application/json';
          headers['content-length'] = String(Buffer.byteLength(payload));
        }
        const url = new URL(this.#baseUrl + path);
        // Every orders call is idempotent, so any failure — not delivered, reset, timed out, a 5xx — is sent again on a
        // connection of its own (another pooled socket may be just as stale), after a pause that lets the Service's
        // endpoints drop a pod that went away; a killed or drained replica costs latency, not an error.
        const attempt = async (agent: http.Agent | false) => {
          const r = await exchange(agent, url, method, headers, payload, this.#timeoutMs);
          // A replica shedding load is not asked again at once: that is the load it sheds.
          if (r.status === 503 && errorCodeOf(r.text) === 'overloaded') throw new UpstreamOverloaded(`${method} ${path}: orders is overloaded`);
          // Orders' store is full: an answer (the same on every replica until it has more room), not a failure.
          if (isStoreFullReply(r)) return r;
          if (r.status >= 500) throw new ServerError(`${method} ${path} answered ${r.status}`, r);
          return r;
        };
        // The retry machinery is set up only when the first attempt failed: this is every request's path.
        const res = await attempt(this.#agent)
          // pRetry's first call goes at once (a stale pooled socket needs no pause), the others after 200 ms–1 s.
          .catch((first: unknown) => {
            if (first instanceof UpstreamOverloaded) throw first;
            const shouldRetry = ({ error }: { error: unknown }) => !(error instanceof UpstreamOverloaded);
            return pRetry(() => attempt(false), { retries: ORDERS_ATTEMPTS - 2, minTimeout: 200, maxTimeout: 1000, maxRetryTime: 2 * this.#timeoutMs, shouldRetry });
          })
          .catch((err: unknown) => {
            if (err instanceof ServerError) return err.reply;
            throw err;
          });
        if (res.status >= 500 && !isStoreFullReply(res)) throw new Error(`${method} ${path} answered ${res.status}`);
        return { status: res.status, body: parseJsonOrText(res.text) };
      }),
    );
  }
}

/** A 503 store_full: orders refused a new order for lack of space (passed on, not retried, not a breaker failure). */
function isStoreFullReply(r: { status: number; text: string }): boolean {
  return r.status === 503 && errorCodeOf(r.text) === STORE_FULL;
}

/** The `error.code` of a platform error body (`{"error":{"code",...}}`), if it is one. */
function errorCodeOf(text: string): unknown {
  return (parseJsonOrText(text) as { error?: { code?: unknown } } | undefined)?.error?.code;
}

function parseJsonOrText(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** An upstream the gateway asks over core NATS: requests with a deadline, each through the upstream's breaker. */
abstract class NatsUpstream {
  protected readonly nc: NatsConnection;
  protected readonly timeoutMs: number;
  protected readonly breakers: Breakers;

  constructor(nc: NatsConnection, timeoutMs: number, breakers: Breakers) {
    this.nc = nc;
    this.timeoutMs = timeoutMs;
    this.breakers = breakers;
  }

  /** A failed request's error as the gateway reports it: a timeout is an UpstreamTimeout naming what did not answer. */
  protected failure(err: unknown, what: string): unknown {
    return isTimeout(err) ? new UpstreamTimeout(`${what}: no answer within ${this.timeoutMs}ms`, { cause: err }) : err;
  }
}

/** Saga progress from the engine (`saga.engine.get`), through the `engine` breaker. */
export class EngineProgress extends NatsUpstream {
  readonly #client = new EngineClient(this.nc, { timeoutMs: this.timeoutMs });

  /** The run, or undefined when the engine has none under this id (yet). */
  get(runId: string): Promise<RunView | undefined> {
    return this.breakers.call('engine', async () => {
      try {
        return (await this.#client.get({ runId })).run;
      } catch (err) {
        if (err instanceof EngineRequestError && err.code === 'not_found') return undefined;
        throw this.failure(err, 'saga.engine.get');
      }
    });
  }
}

/**
 * `query.<service>.*` requests over core NATS, each through its service's breaker. An `{error}` reply or a
 * reply that fails its schema is a BadUpstreamReply (the service is up: it does not trip the breaker).
 */
export class Queries extends NatsUpstream {
  async request<T>(upstream: Upstream, subject: string, check: { parse(value: unknown): T }): Promise<T> {
    const data = await this.breakers.call(upstream, () =>
      withSpan(`request ${subject}`, { kind: SpanKind.CLIENT, attributes: { 'messaging.destination.name': subject } }, async () => {
        const h = natsHeaders();
        injectTrace(h);
        try {
          const msg = await this.nc.request(subject, '{}', { timeout: this.timeoutMs, headers: h });
          return msg.string();
        } catch (err) {
          throw this.failure(err, subject);
        }
      }),
    );
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch (err) {
      throw new BadUpstreamReply(upstream, `${subject}: reply is not JSON`, { cause: err });
    }
    const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error) throw new BadUpstreamReply(upstream, `${subject}: ${String(error.code)}: ${String(error.message)}`);
    try {
      return check.parse(value);
    } catch (err) {
      if (err instanceof ValidationError) throw new BadUpstreamReply(upstream, `${subject}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  products<T>(check: { parse(value: unknown): T }): Promise<T> {
    return this.request('inventory', QuerySubjects.products, check);
  }
}
