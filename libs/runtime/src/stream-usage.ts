/** How full the platform's streams are, read from JetStream when Prometheus scrapes: what the StreamNearlyFull alert watches. */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Metrics, Streams } from '@sagamesh/contracts';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.ts';

/**
 * Registers `sagamesh_stream_bytes` and `sagamesh_stream_max_bytes` per platform stream. Each scrape asks JetStream for
 * the streams' info (one request each); a stream that does not answer is left out of that scrape, never reported stale.
 * One process of the platform registers these (the engine): every replica reports the same figures.
 */
export function registerStreamUsage(registry: Registry, jsm: JetStreamManager, log: Logger): void {
  const names = Object.values(Streams).map((s) => s.name);
  // One reading serves both gauges: the registry collects them at the same time, so the second finds it in flight.
  let reading: Promise<Map<string, { bytes: number; maxBytes: number }>> | undefined;
  const read = async () => {
    const usage = new Map<string, { bytes: number; maxBytes: number }>();
    await Promise.all(
      names.map(async (stream) => {
        try {
          const info = await jsm.streams.info(stream);
          usage.set(stream, { bytes: info.state.bytes, maxBytes: info.config.max_bytes });
        } catch (err) {
          log.debug({ err, stream }, 'stream info unavailable for this scrape');
        }
      }),
    );
    return usage;
  };
  const current = () => (reading ??= read().finally(() => (reading = undefined)));
  const gauge = (name: string, help: string, pick: (u: { bytes: number; maxBytes: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['stream'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [stream, u] of await current()) this.set({ stream }, pick(u));
      },
    });
  gauge(Metrics.streamBytes, 'Bytes a platform stream holds now (JetStream stream info state.bytes)', (u) => u.bytes);
  gauge(Metrics.streamMaxBytes, "A platform stream's byte limit (max_bytes; -1: none)", (u) => u.maxBytes);
}
