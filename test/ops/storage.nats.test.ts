/**
 * Bounded storage on a real nats-server, with the whole platform in-process under a tiny store budget
 * (JETSTREAM_STORE_MIB=2: every stream and bucket gets its share of 2 MiB, README "Storage"):
 * - orders in batches: SAGA_EVENTS stops growing once its byte limit applies (each order run's end, oldest
 *   runs dropped) while every saga still ends; the work queues are empty after each batch;
 * - then ORDERS reaches its high-water mark: new orders get 503 store_full with Retry-After through the gateway,
 *   GETs still answer, and every order accepted before ends (nothing accepted is lost, nothing dead-lettered).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Catalogue, maxBytesOf, ordersReserveBytes, SagaEndSubjects, STORE_FULL, StreamLimits, Streams } from '@sagamesh/contracts';
import { startNatsServer, waitFor } from '@sagamesh/testing';
import { ApiError, GatewayClient } from '../../scripts/lib/client.ts';
import { type InProcessPlatform, startInProcessPlatform } from '../in-process-platform.ts';

const API_KEY = 'storage-test-key-0123456789';
const STORE_MIB = 2;
let nats: Awaited<ReturnType<typeof startNatsServer>>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let api: GatewayClient;
let gatewayUrl: string;
let platform: InProcessPlatform | undefined;
const ended = new Set<string>();
const accepted: string[] = [];
const sku = Catalogue.find((c) => c.initial > 1000)!.sku;

before(async () => {
  nats = await startNatsServer();
  platform = await startInProcessPlatform(nats.url, API_KEY, { LOG_LEVEL: 'error', JETSTREAM_STORE_MIB: String(STORE_MIB) });
  gatewayUrl = platform.gatewayUrl;
  api = new GatewayClient(gatewayUrl, API_KEY);
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  nc.subscribe(SagaEndSubjects.endedOf('order'), {
    callback: (err, m) => {
      if (!err) ended.add(m.subject.slice(SagaEndSubjects.endedOf('order').length - 1));
    },
  });
  await nc.flush();
});

after(async () => {
  await nc?.close();
  await platform?.stop();
  await nats?.stop();
});

const order = (i: number) => ({ customerId: `c-${i % 7}`, items: [{ sku, quantity: 1 }] });

/** Places `n` orders, `inFlight` at a time; returns the refusals (ApiError) and records the accepted ids. */
async function placeBatch(n: number, inFlight = 5): Promise<ApiError[]> {
  const refused: ApiError[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next++;
        try {
          accepted.push(await api.placeOrder(order(i)));
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          refused.push(err);
        }
      }
    }),
  );
  return refused;
}

const allEnded = () => waitFor(() => accepted.every((id) => ended.has(id)), { what: `the end of ${accepted.length} sagas`, timeoutMs: 60_000, intervalMs: 100 });
const stream = async (name: string) => (await jsm.streams.info(name)).state;

test('SAGA_EVENTS stops growing once its limit applies, and the work queues are empty after each batch', async () => {
  const limit = maxBytesOf(StreamLimits.sagaEvents, STORE_MIB);
  const sizes: number[] = [];
  // Small batches: an order run keeps ~1.4 KB here (its end) and an order ~0.9 KB in ORDERS, so SAGA_EVENTS reaches
  // its limit (~190 runs) only a few batches before ORDERS its high-water mark (~220 orders).
  const atLimit = (bytes: number) => bytes > limit - 3 * (sizes[0]! / 10);
  for (let batch = 0; batch < 30 && sizes.filter(atLimit).length < 2; batch++) {
    assert.deepEqual(await placeBatch(10), [], `batch ${batch}: no refusal yet`);
    await allEnded();
    const events = await stream(Streams.sagaEvents.name);
    sizes.push(events.bytes);
    assert.ok(events.bytes <= limit, `SAGA_EVENTS ${events.bytes} B within its limit ${limit} B`);
    // The end of each order run, at most: their progress is not kept (isProgressDurable).
    assert.ok(events.messages <= accepted.length, `${events.messages} events for ${accepted.length} runs`);
    // Work queues: every command and reply was acked, so deleted.
    await waitFor(async () => (await stream(Streams.commands.name)).messages === 0 && (await stream(Streams.replies.name)).messages === 0, { what: 'empty work queues' });
  }
  console.log(`SAGA_EVENTS bytes after each batch of 10 sagas: ${sizes.join(', ')} (limit ${limit})`);
  // Growing at first, then held at the limit (within a few runs' ends) while the sagas go on.
  assert.ok(sizes[0]! < sizes[1]!, 'grows while below its limit');
  // The loop ends once two batches found it at its limit (each within it, asserted above); it must get there.
  assert.equal(sizes.filter(atLimit).length, 2, `reached its limit and held there within 30 batches: ${sizes.join(', ')}`);
});

test('past the order store high-water mark new orders get 503 store_full, and every order accepted before ends', async () => {
  const ordersLimit = maxBytesOf(StreamLimits.orders, STORE_MIB);
  let refusals: ApiError[] = [];
  for (let batch = 0; refusals.length === 0; batch++) {
    assert.ok(batch < 40, 'the order store never reported full');
    refusals = await placeBatch(10);
    // Sagas end before the next batch, as the reserve is sized for: it holds the outcomes of the orders in flight
    // (thousands in the cluster's 154 MiB ORDERS, a handful in this test's 2 MiB budget).
    if (refusals.length === 0) await allEnded();
  }
  for (const r of refusals) {
    assert.equal(r.status, 503);
    assert.equal((r.body as { error: { code: string } }).error.code, STORE_FULL, JSON.stringify(r.body));
  }
  // Not a transient failure: the next one is refused too, at once, with its reason and a Retry-After.
  const res = await fetch(`${gatewayUrl}/api/orders`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(order(0)) });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) >= 1, 'Retry-After');
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, STORE_FULL);
  assert.match(body.error.message, /order store is full/);

  // Nothing accepted is lost: every accepted order ends, with room left for its end event.
  await allEnded();
  const views = await api.waitForOrders(accepted, 60_000);
  assert.deepEqual([...new Set([...views.values()].map((v) => v.status))].filter((s) => s !== 'CONFIRMED' && s !== 'CANCELLED'), []);
  assert.equal((await stream(Streams.deadLetters.name)).messages, 0, 'no dead letter');
  const ordersState = await stream(Streams.orders.name);
  assert.ok(ordersState.bytes <= ordersLimit, `ORDERS ${ordersState.bytes} B within ${ordersLimit} B`);
  assert.ok(ordersState.bytes >= ordersLimit - ordersReserveBytes(ordersLimit), 'refused only past the high-water mark');
  console.log(`${accepted.length} orders accepted and ended; refused past ${ordersState.bytes} of ${ordersLimit} bytes of ORDERS`);
});
