import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import { bodyParserError, ValidationError } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';
import type { ServiceMetrics } from './metrics.ts';
import { UNTRACED_HTTP_PATHS } from './tracing.ts';

/** Throw from a route for a JSON 4xx/5xx: `{"error":{"code","message"}}`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

/** Sends the platform's error body. */
export function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/**
 * Keep-alive, both ends. A server keeps an idle connection open longer than our clients keep one in their
 * pool, so the client always closes first and never sends a request on a socket the server is closing
 * (a reset: Node's default server timeout is 5 s, and an http.Agent without `timeout` keeps idle sockets
 * for ever, ignoring the server's `Keep-Alive: timeout` hint). 65 s also outlasts the usual 60 s idle
 * timeout of proxies and load balancers in front of the gateway.
 */
export const KEEP_ALIVE = { serverIdleMs: 65_000, clientIdleMs: 30_000 } as const;

export interface HttpServerOptions {
  service: string;
  host: string;
  /** 0 picks a free port; `listen()` returns the bound one. */
  port: number;
  log: Logger;
  metrics: ServiceMetrics;
  ready: () => boolean | Promise<boolean>;
  /** Routes known at creation; more come with `open(routes)`. */
  routes?: Routes;
  /**
   * Listen before the service is wired: until `open()`, every request but the probes and scrapes is answered 503
   * `starting` with Retry-After (not a 404 for a route not mounted yet). Default false: open at once.
   */
  startsClosed?: boolean;
  /**
   * How long close() keeps serving, with /readyz failing, before it stops accepting: a terminating pod stays in
   * the Service's endpoints (kube-proxy's rules) for a moment, and what reaches it then should still be answered.
   */
  drainDelayMs?: number;
  /**
   * Requests handled at once, at most (probes and scrapes aside): past it a request is answered 503 `overloaded`
   * with Retry-After at once, before it costs memory. Default: no cap.
   */
  maxInFlight?: number;
}

/** A request (headers and body) must arrive within this; a slow client cannot hold a socket for minutes. */
const REQUEST_TIMEOUT_MS = 30_000;
const HEADERS_TIMEOUT_MS = 10_000;

/** Mounts a service's routes; they sit before the JSON 404 and error handlers whenever they are mounted. */
export type Routes = (router: express.Router) => void;

export interface HttpServer {
  app: express.Express;
  /** Mounts `routes` (also after `listen()`) and starts serving requests beyond the probes. */
  open(routes?: Routes): void;
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** The matched route pattern (`/api/orders/:orderId`), never a raw path: ids stay out of labels. */
function routeLabel(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return path === undefined ? 'unmatched' : `${req.baseUrl}${String(path)}`;
}

/**
 * An express app with /livez, /readyz, /metrics, RED metrics by route pattern, a JSON 404 and a JSON error
 * handler. Routes go in `routes`. The SERVER span per request is @opentelemetry/instrumentation-http's
 * (otel-http.ts, registered only when tracing is on); this names it `METHOD /route` by reporting the route.
 */
export function createHttpServer(opts: HttpServerOptions): HttpServer {
  const { service, log, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    // The HTTP instrumentation's per-request record (undefined when tracing is off or the path is untraced):
    // given the matched route, it names the SERVER span `METHOD /route` and sets http.route. Hand-written rather
    // than @opentelemetry/instrumentation-express, which measured ~375 µs of server CPU per traced request against
    // ~230 µs with this (and adds a span per middleware): see otel-http.ts.
    const rpc = getRPCMetadata(context.active());
    res.on('finish', () => {
      const route = routeLabel(req);
      metrics.httpRequests.inc({ service, route, method: req.method, code: String(res.statusCode) });
      metrics.httpDuration.observe({ service, route, method: req.method }, Number(process.hrtime.bigint() - start) / 1e9);
      if (rpc?.type === RPCType.HTTP && req.route !== undefined) rpc.route = route;
    });
    next();
  });

  let draining = false;
  // While draining, every answer closes its connection: a client's next request opens a new one, which the
  // Service sends to another replica, instead of racing the close of an idle keep-alive socket.
  app.use((_req, res, next) => {
    if (draining) res.setHeader('Connection', 'close');
    next();
  });
  let opened = !opts.startsClosed;
  app.use((req, res, next) => {
    if (opened || UNTRACED_HTTP_PATHS.has(req.path)) return next();
    res.set('Retry-After', '1');
    sendError(res, 503, 'starting', `${service} is starting: retry in a second`);
  });
  let inFlight = 0;
  const maxInFlight = opts.maxInFlight ?? Number.POSITIVE_INFINITY;
  app.use((req, res, next) => {
    if (UNTRACED_HTTP_PATHS.has(req.path)) return next();
    if (inFlight >= maxInFlight) {
      metrics.requestsRejected.inc({ service, reason: 'overload' });
      res.set('Retry-After', '1');
      return sendError(res, 503, 'overloaded', `${service} has ${inFlight} requests in flight, its limit: retry in a second`);
    }
    inFlight++;
    res.once('close', () => inFlight--);
    next();
  });
  app.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    let ready = false;
    let reason = 'dependencies are not ready';
    try {
      if (draining) reason = 'shutting down';
      else ready = await opts.ready();
    } catch (err) {
      reason = `readiness check failed: ${(err as Error).message}`;
    }
    if (ready) res.json({ status: 'ready' });
    else sendError(res, 503, 'not_ready', reason);
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  const serviceRoutes = express.Router();
  app.use(serviceRoutes);
  opts.routes?.(serviceRoutes);

  app.use((req: Request, res: Response) => {
    sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`);
  });
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpError) return sendError(res, err.status, err.code, err.message);
    if (err instanceof ValidationError) return sendError(res, 400, 'invalid_request', err.message);
    const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string; limit?: number };
    const body = bodyParserError(e);
    if (body) return sendError(res, body.status, body.code, body.message);
    const status = e.status ?? e.statusCode ?? 500;
    if (status >= 400 && status < 500 && e.expose !== false) return sendError(res, status, 'bad_request', e.message ?? 'bad request');
    log.error({ err, method: req.method, route: routeLabel(req) }, 'request failed');
    sendError(res, 500, 'internal', 'internal error');
  });

  let server: Server | undefined;
  return {
    app,
    open(routes) {
      routes?.(serviceRoutes);
      opened = true;
    },
    listen() {
      return new Promise((resolve, reject) => {
        const srv = createServer(app);
        srv.keepAliveTimeout = KEEP_ALIVE.serverIdleMs;
        srv.requestTimeout = REQUEST_TIMEOUT_MS;
        srv.headersTimeout = HEADERS_TIMEOUT_MS;
        srv.once('error', reject);
        srv.listen(opts.port, opts.host, () => {
          srv.off('error', reject);
          server = srv;
          const port = (srv.address() as AddressInfo).port;
          log.info({ host: opts.host, port }, 'http listening');
          resolve(port);
        });
      });
    },
    async close() {
      const srv = server;
      if (!srv) return;
      server = undefined;
      draining = true;
      if (opts.drainDelayMs) {
        log.info({ drainDelayMs: opts.drainDelayMs }, 'draining: still serving while endpoints drop this instance');
        await new Promise((r) => setTimeout(r, opts.drainDelayMs));
      }
      await new Promise<void>((resolve, reject) => {
        srv.close((err) => (err ? reject(err) : resolve()));
        // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
        srv.closeIdleConnections();
      });
    },
  };
}
