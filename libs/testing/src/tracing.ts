import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { registerHttpInstrumentation } from '@sagamesh/runtime/otel-http';

export interface TestTracing {
  exporter: InMemorySpanExporter;
  stop(): Promise<void>;
}

/**
 * Registers a real tracing SDK globally (in-memory exporter, AsyncLocalStorage context, W3C
 * propagator) with the HTTP instrumentation the preload registers, so tests can assert on the finished
 * spans production makes. `stop()` unregisters it all.
 */
export function startTestTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager)) throw new Error('a global context manager is already registered');
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const unpatch = registerHttpInstrumentation(provider);
  return {
    exporter,
    async stop() {
      unpatch();
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
