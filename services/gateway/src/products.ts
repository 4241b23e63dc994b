import type { Product } from '@sagamesh/contracts';

/**
 * The product list, cached in memory: inventory's stock_changed events invalidate it, a short TTL is the
 * safety net for missed events (e.g. while disconnected). Concurrent misses share one load; a load that
 * started before an invalidation answers its callers but is not cached.
 */
export class ProductCache {
  readonly #load: () => Promise<Product[]>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #cached: { products: Product[]; at: number } | undefined;
  #inflight: Promise<Product[]> | undefined;
  #generation = 0;

  constructor(load: () => Promise<Product[]>, ttlMs: number, now: () => number = Date.now) {
    this.#load = load;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(): Promise<Product[]> {
    if (this.#cached && this.#now() - this.#cached.at < this.#ttlMs) return Promise.resolve(this.#cached.products);
    if (this.#inflight) return this.#inflight;
    const generation = this.#generation;
    const load = this.#load().then(
      (products) => {
        if (generation === this.#generation) this.#cached = { products, at: this.#now() };
        return products;
      },
    ).finally(() => {
      if (this.#inflight === load) this.#inflight = undefined;
    });
    this.#inflight = load;
    return load;
  }

  invalidate(): void {
    this.#generation++;
    this.#cached = undefined;
    this.#inflight = undefined;
  }
}
