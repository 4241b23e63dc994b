// `node --import @sagamesh/runtime/otel-preload`: starts the OpenTelemetry NodeSDK (OTLP/HTTP traces, W3C
// trace context, the HTTP instrumentation of otel-http.ts) when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise
// tracing stays a no-op and nothing is loaded or patched. This is OTel's configuration edge, so it reads the
// environment itself (the SDK reads the other OTEL_* too).
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
  const [{ NodeSDK }, { W3CTraceContextPropagator }, { OTLPTraceExporter }, { registerHttpInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('./otel-http.ts'),
  ]);
  const sdk = new NodeSDK({
    traceExporter: new OTLPTraceExporter(),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
    // Metrics are prom-client's (/metrics). Unless OTEL_METRICS_EXPORTER asks for them, no OTel MeterProvider:
    // the SDK would otherwise export over OTLP, and the HTTP instrumentation record a histogram per request.
    ...(process.env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
  });
  sdk.start();
  // After start: the instrumentation takes the SDK's tracer provider, now the global one.
  registerHttpInstrumentation();
  // runMain flushes spans before it exits; this covers a natural exit.
  // An unreachable collector must not turn a clean exit into a failure.
  process.once('beforeExit', () => void sdk.shutdown().catch(() => undefined));
}
