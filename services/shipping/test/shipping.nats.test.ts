import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { Buckets, QuerySubjects, StepErrorCodes, type ShippingAuditPart } from '@sagamesh/contracts';
import { StepLedger, loadConfig, type Started } from '@sagamesh/kit';
import { waitFor } from '@sagamesh/kit/testing';
import { command, fakeCrash, fault, runId, startRig, waitReady, type Rig } from '../../kit/test/participant-rig.ts';
import { ShippingConfigSchema, start } from '../src/index.ts';
import type { ShipmentRecord } from '../src/shipping.ts';

let rig: Rig;
let svc: Started | undefined;
const config = () => loadConfig(ShippingConfigSchema, { NATS_URL: rig.server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
const books = () => rig.query<ShippingAuditPart>(QuerySubjects.audit('shipping'));
const create = (run: string, opts: Parameters<typeof command>[4] = {}) => command(run, 'create-shipment', 'do', { customerId: 'c-1', items: [] }, opts);
const cancel = (run: string, opts: Parameters<typeof command>[4] = {}) => command(run, 'create-shipment', 'compensate', {}, opts);

before(async () => {
  rig = await startRig();
  svc = await waitReady(await start(config()));
});
after(async () => {
  await svc?.stop();
  await rig?.stop();
});

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
  await svc?.stop();
  let crashes = 0;
  svc = await waitReady(await start(config(), { crash: fakeCrash(() => crashes++) }));
  const before = await books();
  const run = runId();
  await rig.send('shipping', 'create', create(run, { faults: [fault('shipping.create', { crashAfterCommit: true })] }));
  await waitFor(() => crashes === 1, { what: 'the crash after commit' });
  await svc.stop();
  assert.equal((await rig.replies(run)).length, 0);
  const kv = await new Kvm(rig.js).open(Buckets.shipping);
  assert.equal((await kv.get(StepLedger.keyOf(`${run}.create-shipment`)))?.json<ShipmentRecord>().action?.outcome, 'succeeded');
  svc = await waitReady(await start(config()));
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'succeeded');
  assert.equal(crashes, 1);
  assert.equal((await books()).order.created - before.order.created, 1);
});
