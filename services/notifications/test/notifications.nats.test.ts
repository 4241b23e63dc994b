import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, Consumers, Streams, Subjects, ceType, type OrderDomainEvent } from '@sagamesh/contracts';
import { declarePlatformStreams, loadConfig, publishEvent, type Started } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { NotificationsConfigSchema, start } from '../src/index.ts';
import type { Notification } from '../src/notifications.ts';

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let svc: Started;
let kv: KV;

async function orderEvent(type: 'confirmed' | 'cancelled' | 'failed', data: OrderDomainEvent, msgId?: string): Promise<void> {
  await publishEvent(js, Subjects.domainEvent('order', type), { type: ceType('order', type), source: 'orders', data, correlationId: data.orderId, ...(msgId ? { msgId } : {}) });
}
// The ack floor, not the delivered count: a delivered event may still be in its handler.
const handled = async () => (await (await jetstreamManager(nc)).consumers.info(Streams.domainEvents.name, Consumers.notifications)).ack_floor.stream_seq;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  await declarePlatformStreams(await jetstreamManager(nc));
  svc = await start(loadConfig(NotificationsConfigSchema, { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${svc.port}/readyz`)).ok, { what: 'notifications ready' });
  kv = await new Kvm(js).open(Buckets.notifications);
});
after(async () => {
  await svc?.stop();
  await nc?.close();
  await server?.stop();
});

test('one notification per order and type, even when the event comes twice', async () => {
  const data: OrderDomainEvent = { orderId: 'o-1', customerId: 'c-9', total: 1000, status: 'CONFIRMED' };
  await orderEvent('confirmed', data, 'first');
  await orderEvent('confirmed', data, 'second'); // a duplicate the stream keeps (another msg id)
  await orderEvent('cancelled', { ...data, orderId: 'o-2', status: 'CANCELLED', reason: 'out of stock' });
  await waitFor(async () => (await handled()) >= 3, { what: 'the three events handled' });
  const first = await kv.get('o-1.confirmed');
  assert.ok(first);
  const rec = first.json<Notification>();
  assert.deepEqual([rec.orderId, rec.type], ['o-1', 'confirmed']);
  const history = await kv.history({ key: 'o-1.confirmed' });
  let versions = 0;
  for await (const _ of history) versions++;
  assert.equal(versions, 1, 'the duplicate wrote nothing');
  assert.equal((await kv.get('o-2.cancelled'))?.json<Notification>().type, 'cancelled');
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  assert.deepEqual(keys.sort(), ['o-1.confirmed', 'o-2.cancelled']);
});

test('an order event with a bad order id is dead-lettered, not recorded', async () => {
  const bad = { orderId: 'has spaces', customerId: 'c', total: 1, status: 'FAILED' } satisfies OrderDomainEvent;
  await orderEvent('failed', bad);
  const jsm = await jetstreamManager(nc);
  await waitFor(
    async () => {
      const info = await jsm.streams.info(Streams.deadLetters.name, { subjects_filter: Subjects.deadLetter('events.order.failed') });
      return (info.state.subjects?.[Subjects.deadLetter('events.order.failed')] ?? 0) === 1;
    },
    { what: 'the dead letter' },
  );
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  assert.deepEqual(keys.sort(), ['o-1.confirmed', 'o-2.cancelled'], 'nothing recorded for it');
});
