// The HTTP instrumentation every traced sagamesh process registers: otel-preload.ts with the NodeSDK, and the
// test rig (`startTestTracing`) with its in-memory SDK, so the tests assert on the spans production makes.
// Loaded only where an SDK runs: with tracing off nothing here is imported, and nothing is patched.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { IncomingMessage } from 'node:http';
import type { TracerProvider } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UNTRACED_HTTP_PATHS } from './tracing.ts';

function untraced(req: IncomingMessage): boolean {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return UNTRACED_HTTP_PATHS.has(q === -1 ? url : url.slice(0, q));
}

/**
 * @opentelemetry/instrumentation-http: a SERVER span per request (parent from the W3C headers; named
 * `METHOD /route` from the route createHttpServer reports, status ERROR on 5xx; probes and scrapes untraced) and a
 * CLIENT span per outgoing node:http(s) request made inside a trace, with the traceparent injected.
 *
 * Measured (2026-12, 2 busy cores; createHttpServer with a POST + express.json and a GET route, 20,000 keep-alive
 * requests carrying a traceparent, server CPU per request, median of 4–6 runs): tracing off 96–121 µs with the
 * hand-made span before or this after (nothing is loaded then); tracing on (NodeSDK, OTLP to a local sink) ~165 µs
 * with the hand-made span, ~230 µs with this, i.e. +60–80 µs per request, ~2–3 % of a saga's CPU (gateway in+out,
 * orders in). `npm run bench -- --seconds 15 --no-profile` with OTEL_EXPORTER_OTLP_ENDPOINT set, 4 runs each, CPU per
 * saga against nats-server's as the control (the machine was shared): gateway 0.52 → 0.66 of it, orders 0.71 →
 * 0.77 (~+400 µs a saga, ~3 % of the platform's CPU); throughput and p99 moved less than the run-to-run noise.
 * With tracing off (the bench's default) nothing changed. Adopted for that price: the spans follow the HTTP
 * semantic conventions, each retry to orders is a CLIENT span of its own, and the code is not ours to keep.
 * Not adopted:
 * - @opentelemetry/instrumentation-express 0.72.0: ~375 µs per request with it (+~145 µs over this alone), an
 *   INTERNAL span per middleware and handler layer (5 for a plain GET), and a second @opentelemetry/instrumentation
 *   (it wants ^0.300.0). What it would add, http.route, createHttpServer already computes for its RED metrics and
 *   hands to this instrumentation (http.ts).
 * - @opentelemetry/instrumentation-undici: nothing to instrument; no service calls fetch/undici (the gateway calls
 *   orders over node:http, which this covers).
 */
export function httpInstrumentation(): HttpInstrumentation {
  return new HttpInstrumentation({
    ignoreIncomingRequestHook: untraced,
    // An outgoing request outside any trace (the operator's kube-apiserver watches, say) is not a trace of its own.
    requireParentforOutgoingSpans: true,
  });
}

/**
 * Registers the HTTP instrumentation with `tracerProvider` (the global one by default) and returns its
 * unregister function. ESM imports bypass require-in-the-middle (and import-in-the-middle's loader hook is not
 * needed for built-ins), so the patch is applied here by requiring node:http(s) once: it patches the module objects
 * themselves (`http.request`, `Server.prototype.emit`), which every importer shares, whenever it was loaded.
 */
export function registerHttpInstrumentation(tracerProvider?: TracerProvider): () => void {
  const off = registerInstrumentations({ instrumentations: [httpInstrumentation()], ...(tracerProvider ? { tracerProvider } : {}) });
  const require = createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  // And named imports (`import { request } from 'node:http'`) see the patched functions too.
  syncBuiltinESMExports();
  return off;
}
