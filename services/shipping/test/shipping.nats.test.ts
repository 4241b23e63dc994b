import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { Buckets, QuerySubjects, StepErrorCodes, type ShippingBooksReply } from '@sagamesh/contracts';
import { StepLedger } from '@sagamesh/participant';
import { command, fault, runId, useParticipantService } from '@sagamesh/testing';
import { ShippingConfigSchema, start } from '../src/index.ts';
import type { ShipmentRecord } from '../src/shipping.ts';

const shipping = useParticipantService(ShippingConfigSchema, start);
const { rig } = shipping;
const books = () => rig.query<ShippingBooksReply>(QuerySubjects.books('shipping'));
const create = (run: string, opts: Parameters<typeof command>[4] = {}) => command(run, 'create-shipment', 'do', { customerId: 'c-1', items: [] }, opts);
const cancel = (run: string, opts: Parameters<typeof command>[4] = {}) => command(run, 'create-shipment', 'compensate', {}, opts);

test('create, the same command again and a retry: one shipment with one id; cancel counts it once', async () => {
  const before = await books();
  const run = runId();
  await rig.send('shipping', 'create', create(run), 'one');
  await rig.send('shipping', 'create', create(run), 'two');
  await rig.send('shipping', 'create', create(run, { attempt: 2 }));
  const replies = await rig.waitReplies(run, 2);
  assert.deepEqual(replies.map((r) => [r.attempt, r.outcome, r.output]), [
    [1, 'succeeded', { shipmentId: `shp.${run}.create-shipment` }],
    [2, 'succeeded', { shipmentId: `shp.${run}.create-shipment` }],
  ]);
  await rig.send('shipping', 'cancel', cancel(run));
  await rig.send('shipping', 'cancel', cancel(run, { attempt: 2 }));
  const all = await rig.waitReplies(run, 4);
  assert.deepEqual(all.slice(2).map((r) => r.output), [{ cancelled: true }, { cancelled: true }]);
  const now = await books();
  assert.equal(now.order.created - before.order.created, 1);
  assert.equal(now.order.cancelled - before.order.cancelled, 1);
});

test('k8s-origin shipments are counted apart', async () => {
  const before = await books();
  const run = runId('k8s');
  await rig.send('shipping', 'create', create(run, { origin: 'k8s' }));
  await rig.waitReplies(run, 1);
  const now = await books();
  assert.equal(now.k8s.created - before.k8s.created, 1);
  assert.deepEqual(now.order, before.order);
});

test('a cancel before its create is a no-op that refuses the late create', async () => {
  const before = await books();
  const run = runId();
  await rig.send('shipping', 'cancel', cancel(run));
  const [c] = await rig.waitReplies(run, 1);
  assert.deepEqual([c!.outcome, c!.output], ['succeeded', { cancelled: false }]);
  await rig.send('shipping', 'create', create(run));
  const [, late] = await rig.waitReplies(run, 2);
  assert.equal(late!.error?.code, StepErrorCodes.compensatedBeforeAction);
  assert.deepEqual(await books(), before);
});

test('crash after commit: the shipment is stored without a reply; the restarted service answers from it, one shipment', async () => {
  const crashes = await shipping.restartCrashing();
  const before = await books();
  const run = runId();
  await rig.send('shipping', 'create', create(run, { faults: [fault('shipping.create', { crashAfterCommit: true })] }));
  await crashes.happened();
  assert.equal((await rig.replies(run)).length, 0);
  const kv = await new Kvm(rig.js).open(Buckets.shipping);
  assert.equal((await kv.get(StepLedger.keyOf(`${run}.create-shipment`)))?.json<ShipmentRecord>().action?.outcome, 'succeeded');
  await shipping.restart();
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'succeeded');
  assert.equal(crashes.count, 1);
  assert.equal((await books()).order.created - before.order.created, 1);
});
