import type { Static, TObject } from '@sinclair/typebox';
import { ConfigError, loadConfig } from './config.ts';
import { releaseMemoryWhenIdle } from './idle-memory.ts';
import { createLogger, type Logger } from './logger.ts';
import { flushTraces } from './tracing.ts';

export interface Started {
  stop(): Promise<void>;
  port: number;
}

/** Cleanups registered while starting, run in reverse order once; every one runs even if one fails. */
export class Shutdown {
  readonly #fns: { name: string; fn: () => unknown }[] = [];
  readonly #log: Logger | undefined;
  #running: Promise<void> | undefined;
  constructor(log?: Logger) {
    this.#log = log;
  }
  onShutdown(fn: () => unknown, name = 'cleanup'): void {
    this.#fns.push({ name, fn });
  }
  /** Runs the cleanups (last registered first); a second call returns the same promise. */
  run(): Promise<void> {
    this.#running ??= (async () => {
      const errors: unknown[] = [];
      for (const { name, fn } of [...this.#fns].reverse()) {
        try {
          await fn();
        } catch (err) {
          this.#log?.error({ err, cleanup: name }, 'cleanup failed');
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup(s) failed`);
    })();
    return this.#running;
  }
}

/** The process's config, or exit 1 with a fatal log line naming every bad variable. */
export function loadConfigOrExit<T extends TObject>(service: string, schema: T, env: NodeJS.ProcessEnv = process.env): Static<T> {
  try {
    return loadConfig(schema, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger(service).fatal({ issues: err.issues }, `invalid configuration: ${err.message}`);
    process.exit(1);
  }
}

/**
 * A service's main: loads config (exit 1 with the ConfigError message), starts, logs the port, and on
 * SIGTERM/SIGINT stops and exits 0 within SHUTDOWN_GRACE_MS (exit 1 past it or when stop fails). Once started, it gives
 * the memory a load left behind back whenever the process idles (releaseMemoryWhenIdle; needs --expose-gc).
 */
export async function runMain<T extends TObject>(
  service: string,
  schema: T,
  start: (config: Static<T>) => Promise<Started>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const config = loadConfigOrExit(service, schema, env);
  const cfg = config as { LOG_LEVEL?: string; SHUTDOWN_GRACE_MS?: number };
  const log = createLogger(service, cfg.LOG_LEVEL ?? 'info');
  const graceMs = cfg.SHUTDOWN_GRACE_MS ?? 10_000;

  let started: Started;
  try {
    started = await start(config);
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    await flushTraces();
    process.exit(1);
  }
  log.info({ port: started.port }, `${service} started`);
  releaseMemoryWhenIdle({ log });

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, graceMs }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ graceMs }, 'shutdown exceeded the grace period');
      process.exit(1);
    }, graceMs);
    timer.unref();
    started
      .stop()
      .then(async () => {
        log.info('stopped');
        await flushTraces();
        process.exit(0);
      })
      .catch(async (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        await flushTraces();
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
