/**
 * The orders projector when an order's end event is delivered before its `placed` was projected — as when the POST
 * started the saga early and the replica holding the `placed` delivery died (it comes back only after AckWait).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JsMsg } from '@nats-io/jetstream';
import { Buckets, Streams, Subjects } from '@sagamesh/contracts';
import { createLogger, ensureKv, JetStreamPublisher } from '@sagamesh/runtime';
import { EngineClient } from '@sagamesh/participant';
import { useNatsServer } from '@sagamesh/testing';
import { OrderEventStore } from '../src/event-store.ts';
import { projectorHandler } from '../src/handlers.ts';
import { ReadModel } from '../src/read-model.ts';
import { SagaStarter } from '../src/saga.ts';
import { readAll } from './helpers.ts';

const nats = useNatsServer({ platformStreams: true });
const log = createLogger('orders-test', 'silent');

/** The stored message at `seq`, as the projector's consumer would deliver it (only the fields the handler reads). */
async function delivery(seq: number): Promise<JsMsg> {
  const sm = await nats.jsm.streams.getMessage(Streams.orders.name, { seq });
  return { subject: sm!.subject, headers: sm!.header, data: sm!.data, seq: sm!.seq } as unknown as JsMsg;
}

test('an end event delivered before its placed is projected folds placed in from the stream: CONFIRMED, event published, no wait', async () => {
  const publisher = new JetStreamPublisher(nats.nc);
  const store = new OrderEventStore(publisher, nats.jsm);
  const readModel = new ReadModel(await ensureKv(nats.js, Buckets.orderView), Buckets.orderView, log);
  // Never called on this path: an end event starts no saga.
  const starter = new SagaStarter(new EngineClient(nats.nc, { timeoutMs: 100 }), log);
  const handle = projectorHandler({ js: publisher, readModel, store, starter, log });

  const orderId = 'ord-early-end';
  await store.execute(orderId, { kind: 'place', orderId, customerId: 'c-1', items: [{ sku: 'sku-1', quantity: 1, unitPrice: 4200 }], total: 4200 });
  await store.execute(orderId, { kind: 'confirm', orderId });
  const { events } = await store.load(orderId);
  assert.deepEqual(events.map((e) => e.event.name), ['placed', 'confirmed']);

  assert.equal(await handle(await delivery(events[1]!.seq)), 'ack', 'the end event is handled on its first delivery');
  const view = await readModel.getView(orderId);
  assert.equal(view?.status, 'CONFIRMED');
  assert.equal(view?.total, 4200);
  const published = (await readAll(nats.js, Streams.domainEvents.name, Subjects.domainEvent('order', 'confirmed'))).filter(
    (m) => m.headers?.get('ce-correlationid') === orderId,
  );
  assert.equal(published.length, 1, 'order.confirmed published for inventory and notifications');

  // The late `placed` delivery then changes nothing and starts no saga (the order already ended).
  assert.equal(await handle(await delivery(events[0]!.seq)), 'ack');
  assert.equal((await readModel.getView(orderId))?.status, 'CONFIRMED');
  readModel.stop();
});
