import CircuitBreaker from 'opossum';
import { Gauge } from 'prom-client';
import { CircuitState, Metrics } from '@sagamesh/contracts';
import type { Logger, ServiceMetrics } from '@sagamesh/runtime';
import type { GatewayConfig } from './config.ts';

export const Upstreams = ['orders', 'engine', 'inventory', 'payments', 'shipping'] as const;
export type Upstream = (typeof Upstreams)[number];

/** Why an upstream call did not produce an answer. */
export type UpstreamFailure = 'open' | 'timeout' | 'overloaded' | 'failed';

export class UpstreamError extends Error {
  readonly upstream: Upstream;
  readonly kind: UpstreamFailure;
  /** For `open`: how long until the breaker lets a trial call through. */
  readonly retryAfterMs: number;
  constructor(upstream: Upstream, kind: UpstreamFailure, message: string, opts?: { retryAfterMs?: number; cause?: unknown }) {
    super(`${upstream}: ${message}`, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UpstreamError';
    this.upstream = upstream;
    this.kind = kind;
    this.retryAfterMs = opts?.retryAfterMs ?? 0;
  }
}

/** Thrown by an upstream action when the upstream shed the call (503 overloaded): not retried, passed on as a 503. */
export class UpstreamOverloaded extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamOverloaded';
  }
}

/** Thrown by an upstream action when the call timed out (the action owns its timeout, so it can cancel). */
export class UpstreamTimeout extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'UpstreamTimeout';
  }
}

type Thunk = () => Promise<unknown>;

/**
 * One opossum breaker per upstream. An action throws only for availability failures (5xx, timeouts,
 * no responders); answers such as 404 are returned, so they never trip the breaker.
 */
export class Breakers {
  readonly #breakers = new Map<Upstream, CircuitBreaker<[Thunk], unknown>>();
  readonly #openedAt = new Map<Upstream, number>();
  readonly #resetMs: number;

  constructor(config: GatewayConfig, metrics: ServiceMetrics, log: Logger) {
    this.#resetMs = config.BREAKER_RESET_MS;
    const state = new Gauge({
      name: Metrics.circuitBreakerState,
      help: 'Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open',
      labelNames: ['upstream'],
      registers: [metrics.registry],
    });
    for (const upstream of Upstreams) {
      const cb = new CircuitBreaker<[Thunk], unknown>((fn: Thunk) => fn(), {
        name: upstream,
        timeout: false, // each action enforces its own timeout and cancels the call
        errorThresholdPercentage: config.BREAKER_ERROR_PERCENT,
        volumeThreshold: config.BREAKER_VOLUME_THRESHOLD,
        rollingCountTimeout: config.BREAKER_WINDOW_MS,
        resetTimeout: config.BREAKER_RESET_MS,
        // An upstream shedding load answered: it is protecting itself, not failing, and an open circuit would turn
        // its short Retry-After into BREAKER_RESET_MS of refusals (reads too).
        errorFilter: (err: unknown) => err instanceof UpstreamOverloaded,
      });
      state.set({ upstream }, CircuitState.closed);
      cb.on('open', () => {
        this.#openedAt.set(upstream, Date.now());
        state.set({ upstream }, CircuitState.open);
        log.warn({ upstream }, 'circuit opened');
      });
      cb.on('halfOpen', () => {
        state.set({ upstream }, CircuitState.halfOpen);
        log.info({ upstream }, 'circuit half-open: letting a trial call through');
      });
      cb.on('close', () => {
        state.set({ upstream }, CircuitState.closed);
        log.info({ upstream }, 'circuit closed');
      });
      this.#breakers.set(upstream, cb);
    }
  }

  /** Runs `fn` through the upstream's breaker; rejects with UpstreamError when it fails or is open. */
  async call<T>(upstream: Upstream, fn: () => Promise<T>): Promise<T> {
    const cb = this.#breakers.get(upstream)!;
    try {
      return (await cb.fire(fn)) as T;
    } catch (err) {
      if (CircuitBreaker.isOurError(err as Error)) {
        const since = Date.now() - (this.#openedAt.get(upstream) ?? 0);
        throw new UpstreamError(upstream, 'open', 'circuit open, failing fast', { retryAfterMs: this.#resetMs - since, cause: err });
      }
      if (err instanceof UpstreamTimeout) throw new UpstreamError(upstream, 'timeout', err.message, { cause: err });
      if (err instanceof UpstreamOverloaded) throw new UpstreamError(upstream, 'overloaded', err.message, { cause: err });
      throw new UpstreamError(upstream, 'failed', (err as Error).message, { cause: err });
    }
  }

  shutdown(): void {
    for (const cb of this.#breakers.values()) cb.shutdown();
  }
}
