/**
 * The orders side of the saga engine: starting an order's run (idempotent by run id = order id) and
 * turning a run's end into an order command.
 */
import {
  ORDER_FULFILLMENT, builtinDefinitionKey, definitionRevision, orderFulfillmentDefinition,
  type RunView, type SagaEvent, type SagaInput, type StartRequest, type StartResponse,
} from '@sagamesh/contracts';
import { type EngineClient, EngineRequestError } from '@sagamesh/participant';
import type { Logger } from '@sagamesh/runtime';
import type { OrderCommand, OrderSnapshot } from './domain.ts';

/** What a saga start needs of an order. */
export type SagaOrder = Pick<OrderSnapshot, 'orderId' | 'customerId' | 'items' | 'total'>;

export const ORDER_DEFINITION_KEY = builtinDefinitionKey(ORDER_FULFILLMENT);
/** The built-in definition's revision: a pure hash of its spec, the one the engine computes when it defines it at start. */
export const ORDER_REVISION = definitionRevision(orderFulfillmentDefinition);

/** The engine's start request for an order's saga. */
export function sagaStartRequest(order: SagaOrder, revision: string, traceparent?: string): StartRequest {
  const input: SagaInput = {
    customerId: order.customerId,
    items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
    amountCents: order.total,
  };
  return {
    runId: order.orderId,
    definitionKey: ORDER_DEFINITION_KEY,
    revision,
    origin: 'order',
    input,
    ...(traceparent !== undefined ? { traceparent } : {}),
  };
}

/** The order command a saga event calls for: only a run's end moves the order. */
export function endCommandFor(ev: SagaEvent): OrderCommand | undefined {
  const orderId = ev.run.runId;
  const reason = ev.run.error ? `${ev.run.error.code}: ${ev.run.error.message}` : (ev.message ?? `saga ${ev.event}`);
  switch (ev.event) {
    case 'succeeded':
      return { kind: 'confirm', orderId };
    case 'compensated':
      return { kind: 'cancel', orderId, reason };
    case 'failed':
      return { kind: 'fail', orderId, reason };
    default:
      return undefined;
  }
}

const END_EVENT_OF_PHASE = { Succeeded: 'succeeded', Compensated: 'compensated', Failed: 'failed' } as const;

/** The end event a run's phase stands for, as the engine publishes it (undefined while the run has not ended). */
export function endEventOf(run: RunView): SagaEvent | undefined {
  const event = END_EVENT_OF_PHASE[run.phase as keyof typeof END_EVENT_OF_PHASE];
  return event === undefined ? undefined : { event, run };
}

/** Engine answers that mean our cached revision is not (or no longer) the engine's. */
const STALE_DEFINITION = new Set(['unknown_definition', 'revision_mismatch']);
/** Early starts remembered for the projector; past this many (the projector runs elsewhere), the oldest are forgotten. */
const EARLY_MAX = 10_000;

export class SagaStarter {
  readonly #engine: EngineClient;
  readonly #log: Logger;
  /** Order id → the early start made right after the append (true when the engine confirmed the run). */
  readonly #early = new Map<string, Promise<boolean>>();

  constructor(engine: EngineClient, log: Logger) {
    this.#engine = engine;
    this.#log = log;
  }

  /**
   * Starts the saga right after the order's append, without waiting for the projector (the relay that
   * guarantees the start: it still runs, and asks again only when this early start failed or was made
   * in another process). Never throws.
   */
  startEarly(order: SagaOrder, traceparent?: string): void {
    const p = this.start(order, traceparent).then(
      () => true,
      (err: unknown) => {
        this.#log.debug({ err, orderId: order.orderId }, 'early saga start failed: the projector starts it');
        return false;
      },
    );
    this.#early.set(order.orderId, p);
    if (this.#early.size > EARLY_MAX) this.#early.delete(this.#early.keys().next().value!);
  }

  /** Whether this process started the order's saga early (waits for that start); forgets it either way. */
  async startedEarly(orderId: string): Promise<boolean> {
    const p = this.#early.get(orderId);
    if (!p) return false;
    this.#early.delete(orderId);
    return p;
  }

  /** Starts the order's saga; the engine de-duplicates by run id, so a repeat returns the existing run. */
  async start(order: SagaOrder, traceparent?: string): Promise<StartResponse> {
    try {
      return await this.#engine.start(sagaStartRequest(order, ORDER_REVISION, traceparent));
    } catch (err) {
      if (!(err instanceof EngineRequestError && STALE_DEFINITION.has(err.code))) throw err;
      // An engine that does not have this revision (one of an older release, mid rolling update): give it ours.
      this.#log.warn({ orderId: order.orderId, code: err.code }, 'engine does not know our definition revision: defining it');
      await this.#engine.define({ key: ORDER_DEFINITION_KEY, spec: orderFulfillmentDefinition });
      return this.#engine.start(sagaStartRequest(order, ORDER_REVISION, traceparent));
    }
  }
}
