/** The internal HTTP API the gateway calls (contracts' OrdersPaths). */
import express from 'express';
import {
  Catalogue, InternalPlaceOrderRequest, MAX_BODY_BYTES, OrdersPaths, STORE_FULL, STORE_FULL_RETRY_AFTER_S, isValidId, newOrderId, validator,
  type PlaceOrderResponse, type RebuildResponse,
} from '@sagamesh/contracts';
import { currentTraceparent, HttpError } from '@sagamesh/runtime';
import { priceOrder, type OrderEvent } from './domain.ts';
import { OrderRejectedError, StoreFullError, type OrderEventStore } from './event-store.ts';
import type { ReadModel } from './read-model.ts';
import type { SagaStarter } from './saga.ts';

const placeRequest = validator(InternalPlaceOrderRequest, 'order request');

export function orderRoutes(deps: { store: OrderEventStore; readModel: ReadModel; starter: SagaStarter; rebuild: () => Promise<RebuildResponse> }) {
  const { store, readModel, starter } = deps;
  return (app: express.Router) => {
    app.post(OrdersPaths.place, express.json({ limit: MAX_BODY_BYTES }), async (req, res) => {
      const body = placeRequest.parse(req.body ?? null);
      const priced = priceOrder(body, Catalogue);
      if (!priced.ok) throw new HttpError(422, 'unknown_sku', `unknown sku(s): ${priced.unknownSkus.join(', ')}`);
      const orderId = body.orderId ?? newOrderId();
      const order = { orderId, customerId: body.customerId, items: priced.items, total: priced.total, ...(body.owner !== undefined ? { owner: body.owner } : {}) };
      let appended: OrderEvent[];
      try {
        appended = await store.execute(orderId, { kind: 'place', ...order });
      } catch (err) {
        if (err instanceof OrderRejectedError) throw new HttpError(409, err.code, err.message, { cause: err });
        if (err instanceof StoreFullError) {
          // Not transient: it lasts until the store has more room. Orders already accepted still complete.
          res.set('Retry-After', String(STORE_FULL_RETRY_AFTER_S));
          throw new HttpError(503, STORE_FULL, err.message, { cause: err });
        }
        throw err;
      }
      const answer: PlaceOrderResponse = { orderId, status: 'PENDING' };
      res.status(202).json(answer);
      // The saga need not wait for the projector to see the append (the projector still guarantees the start).
      if (appended.length > 0) starter.startEarly(order, currentTraceparent());
    });

    app.get(OrdersPaths.order(':orderId'), async (req, res) => {
      const orderId = req.params.orderId;
      if (typeof orderId !== 'string' || !isValidId(orderId)) throw new HttpError(404, 'not_found', `no order ${JSON.stringify(orderId)}: order ids are [A-Za-z0-9_-]{1,128}`);
      // The view lags the append by one projection; an order just placed is read from its events.
      const view = (await readModel.getView(orderId)) ?? (await store.load(orderId)).state;
      if (view === undefined) throw new HttpError(404, 'not_found', `no order ${orderId}`);
      res.json(view);
    });

    app.post(OrdersPaths.rebuild, async (_req, res) => {
      res.json(await deps.rebuild());
    });
  };
}
