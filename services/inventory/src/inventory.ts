/**
 * Inventory's commands (reserve, release), its choreography (a succeeded run's reservation becomes a
 * sale) and its queries (products, books), over InventoryStore.
 */
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import {
  Catalogue,
  DomainEvents,
  ReservationOutput,
  SagaItem,
  Subjects,
  ceType,
  validator,
  type InventoryBooksReply,
  type Product,
  type RunOrigin,
  type StepError,
} from '@sagamesh/contracts';
import { type CommandHandler, defineAction, defineCompensation, type Handled, type StepContext } from '@sagamesh/participant';
import { type JetStreamClient, type Logger, publishEvent } from '@sagamesh/runtime';
import { initialStock, mergeItems, onRelease, storedReserveResult, toSell, type Item } from './domain.ts';
import { ContentionError, type InventoryStore } from './store.ts';

/** A record that keeps moving under its decision this often is stuck: give up, the message is redelivered. */
const MAX_DECISIONS = 10;

/** Coalesces stock changes into `events.inventory.stock_changed` at most once per interval (a cache hint, not a record). */
export class StockChanges {
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(js: JetStreamClient, log: Logger, intervalMs: number) {
    this.#js = js;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  note(skus: readonly string[]): void {
    for (const s of skus) this.#pending.add(s);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#flushing = this.#flushing.then(() => this.#flush());
    }, this.#intervalMs);
  }

  /** Publishes what is pending now (shutdown). */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flushing;
    await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const skus = [...this.#pending].sort();
    this.#pending = new Set();
    const { aggregate, type } = DomainEvents.stockChanged;
    const id = randomUUID();
    try {
      await publishEvent(this.#js, Subjects.domainEvent(aggregate, type), {
        type: ceType(aggregate, type),
        source: 'inventory',
        id,
        correlationId: id,
        data: { skus },
      });
    } catch (err) {
      // Readers treat the event as a cache hint; losing one only delays a refresh.
      this.#log.warn({ err, skus }, 'could not publish stock_changed');
    }
  }
}

export const ReserveInput = Type.Object({ items: Type.Array(SagaItem, { minItems: 1, maxItems: 50 }) });
/** A compensation needs nothing from the input: it undoes what its action's record says. */
const AnyInput = Type.Object({});

export class Inventory {
  readonly #store: InventoryStore;
  readonly #changes: StockChanges;

  constructor(store: InventoryStore, changes: StockChanges) {
    this.#store = store;
    this.#changes = changes;
  }

  /** Creates the catalogue's counters that do not exist yet (first start); later starts change nothing. Returns the skus created. */
  async seed(): Promise<string[]> {
    const created: string[] = [];
    for (const entry of Catalogue) if (await this.#store.seed(entry.sku, initialStock(entry.initial))) created.push(entry.sku);
    if (created.length > 0) this.#changes.note(created);
    return created;
  }

  commands(): Record<string, CommandHandler> {
    return {
      reserve: defineAction(ReserveInput, {
        handle: (ctx) => this.reserve(ctx.actionKey, ctx.command.origin, ctx.input.items),
        fail: (ctx, error) => this.refuse(ctx.actionKey, ctx.command.origin, ctx.input.items, error),
      }),
      release: defineCompensation(AnyInput, (ctx: StepContext) => this.release(ctx.actionKey, ctx.command.origin)),
    };
  }

  /** Reserves all items or none, atomically with the reservation record under `key`. */
  async reserve(key: string, origin: RunOrigin, items: readonly Item[]): Promise<Handled> {
    const applied = await this.#store.apply({ kind: 'reserve', key, origin, items: [...items] });
    if (applied.committed) {
      const result = applied.result!;
      if (result.outcome === 'succeeded') this.#changes.note(mergeItems(items).map((i) => i.sku));
      return { result, committed: true };
    }
    return this.#stored(key);
  }

  /** Stores a refusal (an injected failure) as the reserve's result, unless the key has one already. */
  async refuse(key: string, origin: RunOrigin, items: readonly Item[], error: StepError): Promise<Handled> {
    const applied = await this.#store.apply({ kind: 'refuse', key, origin, items: [...items], error });
    if (applied.committed) return { result: applied.result!, committed: true };
    return this.#stored(key);
  }

  /** A repeated reserve: the record exists (that is why the write was refused). */
  async #stored(key: string): Promise<Handled> {
    const existing = await this.#store.reservation(key);
    if (!existing) throw new Error(`reservation ${key} was refused as existing, but cannot be read`);
    return { result: storedReserveResult(existing.value), committed: false };
  }

  /** Returns a reservation's stock; before its reserve, leaves the tombstone that refuses it. */
  async release(key: string, origin: RunOrigin): Promise<Handled> {
    for (let round = 0; round < MAX_DECISIONS; round++) {
      const existing = await this.#store.reservation(key, round > 0);
      const step = onRelease(existing?.value);
      if (step.kind === 'replay' || step.kind === 'refuse' || step.kind === 'noop') return { result: step.result, committed: false };
      const applied = await this.#store.apply(
        step.kind === 'tombstone'
          ? { kind: 'tombstone', key, origin, result: step.result }
          : { kind: 'release', key, record: existing!.value, expect: existing!.revision, result: step.result },
      );
      if (applied.committed) {
        if (step.kind === 'release') this.#changes.note(existing!.value.items.map((i) => i.sku));
        return { result: step.result, committed: true };
      }
      // the record moved (the late reserve, or a duplicate release): decide again on what is there now
    }
    throw new ContentionError([key]);
  }

  /** A succeeded run's reservation becomes a sale (per origin); a repeated call finds it sold. true when sold now. */
  async sell(key: string): Promise<boolean> {
    for (let round = 0; round < MAX_DECISIONS; round++) {
      const existing = await this.#store.reservation(key, round > 0);
      if (!existing || !toSell(existing.value)) return false;
      if ((await this.#store.apply({ kind: 'sell', key, record: existing.value, expect: existing.revision })).committed) return true;
    }
    throw new ContentionError([key]);
  }

  async products(): Promise<Product[]> {
    const stocks = await this.#store.stocks(Catalogue.map((c) => c.sku), true);
    return Catalogue.map((c) => ({ sku: c.sku, name: c.name, price: c.price, available: stocks.get(c.sku)?.value.available ?? 0 }));
  }

  async books(): Promise<InventoryBooksReply> {
    const stocks = await this.#store.stocks(Catalogue.map((c) => c.sku), true);
    const skus: InventoryBooksReply['skus'] = {};
    for (const [sku, { value }] of stocks) {
      const { initial, available, reserved, sold, soldK8s } = value;
      skus[sku] = { initial, available, reserved, sold, soldK8s };
    }
    return { skus };
  }
}

const reservationOutput = validator(ReservationOutput, 'reservation output');

/** The reserve keys of a run, from its steps' outputs (only keys of this run: a step cannot sell another's stock). */
export function reservationsOf(runId: string, steps: readonly { output?: unknown }[]): string[] {
  return steps.flatMap((s) => (reservationOutput.check(s.output) && s.output.reservation.startsWith(`${runId}.`) ? [s.output.reservation] : []));
}
