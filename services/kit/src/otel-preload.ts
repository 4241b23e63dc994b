// `node --import @sagamesh/kit/otel-preload`: starts the OpenTelemetry NodeSDK (OTLP/HTTP traces, W3C
// trace context) when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise tracing stays a no-op. This is
// OTel's configuration edge, so it reads the environment itself (the SDK reads the other OTEL_* too).
import { NodeSDK } from '@opentelemetry/sdk-node';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
  const sdk = new NodeSDK({
    traceExporter: new OTLPTraceExporter(),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
  });
  sdk.start();
  // runMain flushes spans before it exits; this covers a natural exit.
  // An unreachable collector must not turn a clean exit into a failure.
  process.once('beforeExit', () => void sdk.shutdown().catch(() => undefined));
}
