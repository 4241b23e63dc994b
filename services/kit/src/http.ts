import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { SpanKind, SpanStatusCode, ROOT_CONTEXT, context, propagation, trace } from '@opentelemetry/api';
import { ValidationError } from '@sagamesh/contracts';
import type { Logger } from './logger.ts';
import type { ServiceMetrics } from './metrics.ts';

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
  routes?: (app: express.Express) => void;
}

export interface HttpServer {
  app: express.Express;
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** The matched route pattern (`/api/orders/:orderId`), never a raw path: ids stay out of labels. */
function routeLabel(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return path === undefined ? 'unmatched' : `${req.baseUrl}${String(path)}`;
}

// body-parser's error types, mapped to stable codes.
const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'invalid_json',
  'entity.too.large': 'payload_too_large',
  'encoding.unsupported': 'unsupported_encoding',
  'charset.unsupported': 'unsupported_charset',
  'request.aborted': 'request_aborted',
};

const UNTRACED_PATHS = new Set(['/livez', '/readyz', '/healthz', '/metrics']);

/**
 * An express app with /livez, /readyz, /metrics, RED metrics by route pattern, a SERVER span per
 * request (parent from W3C headers), a JSON 404 and a JSON error handler. Routes go in `routes`.
 */
export function createHttpServer(opts: HttpServerOptions): HttpServer {
  const { service, log, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    // Probes and scrapes are measured but not traced: one trace per scrape would drown the real ones.
    const recordRed = (): string => {
      const route = routeLabel(req);
      metrics.httpRequests.inc({ service, route, method: req.method, code: String(res.statusCode) });
      metrics.httpDuration.observe({ service, route, method: req.method }, Number(process.hrtime.bigint() - start) / 1e9);
      return route;
    };
    if (UNTRACED_PATHS.has(req.path)) {
      res.on('finish', recordRed);
      return next();
    }
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = trace.getTracer('@sagamesh/kit').startSpan(
      req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    res.on('finish', () => {
      const route = recordRed();
      span.updateName(`${req.method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  });

  app.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    let ready = false;
    let reason = 'dependencies are not ready';
    try {
      ready = await opts.ready();
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

  opts.routes?.(app);

  app.use((req: Request, res: Response) => {
    sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`);
  });
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpError) return sendError(res, err.status, err.code, err.message);
    if (err instanceof ValidationError) return sendError(res, 400, 'invalid_request', err.message);
    const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string };
    const status = e.status ?? e.statusCode ?? 500;
    if (status >= 400 && status < 500 && e.expose !== false) {
      return sendError(res, status, (e.type && BODY_ERRORS[e.type]) || 'bad_request', e.message ?? 'bad request');
    }
    log.error({ err, method: req.method, route: routeLabel(req) }, 'request failed');
    sendError(res, 500, 'internal', 'internal error');
  });

  let server: Server | undefined;
  return {
    app,
    listen() {
      return new Promise((resolve, reject) => {
        const srv = createServer(app);
        srv.keepAliveTimeout = KEEP_ALIVE.serverIdleMs;
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
    close() {
      const srv = server;
      if (!srv) return Promise.resolve();
      server = undefined;
      return new Promise((resolve, reject) => {
        srv.close((err) => (err ? reject(err) : resolve()));
        // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
        srv.closeIdleConnections();
      });
    },
  };
}
