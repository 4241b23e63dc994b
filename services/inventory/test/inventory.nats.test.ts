import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Catalogue,
  QuerySubjects,
  SagaEndSubjects,
  StepErrorCodes,
  Streams,
  Subjects,
  ceType,
  isProgressDurable,
  type InventoryBooksReply,
  type Product,
  type RunOrigin,
  type SagaEvent,
} from '@sagamesh/contracts';
import { publishEvent } from '@sagamesh/runtime';
import { command, fault, runId, useParticipantService, waitFor } from '@sagamesh/testing';
import { InventoryConfigSchema, start } from '../src/index.ts';

const inventory = useParticipantService(InventoryConfigSchema, start, { STOCK_EVENT_INTERVAL_MS: '20' });
const { rig } = inventory;
const audit = async () => (await rig.query<InventoryBooksReply>(QuerySubjects.books('inventory'))).skus;
const sku = (books: InventoryBooksReply['skus'], s: string) => books[s]!;
const balanced = (b: InventoryBooksReply['skus']) =>
  Object.values(b).every((s) => s.available + s.reserved + s.sold + s.soldK8s === s.initial && s.available >= 0 && s.reserved >= 0);

const reserve = (run: string, items: { sku: string; quantity: number }[], opts: Parameters<typeof command>[4] = {}) =>
  command(run, 'reserve-inventory', 'do', { customerId: 'c-1', amountCents: 1, items }, opts);
const release = (run: string, opts: Parameters<typeof command>[4] = {}) => command(run, 'reserve-inventory', 'compensate', {}, opts);

/** The engine's Succeeded event for a run whose reserve step output the given reservation. */
async function succeeded(run: string, origin: RunOrigin, output: unknown): Promise<void> {
  const data: SagaEvent = {
    event: 'succeeded',
    run: {
      runId: run,
      definitionKey: 'builtin.order-fulfillment',
      revision: 'r1',
      origin,
      phase: 'Succeeded',
      steps: [
        { name: 'reserve-inventory', status: 'Succeeded', attempts: 1, compensationAttempts: 0, output },
        { name: 'charge-payment', status: 'Succeeded', attempts: 1, compensationAttempts: 0, output: { chargedCents: 1 } },
      ],
      startedAt: new Date().toISOString(),
      version: 5,
    },
  };
  // As the engine does: on the run's progress subject when that is kept, and on its saga.ended subject.
  const ev = { type: ceType('saga', 'succeeded'), source: 'test-engine', data, correlationId: run, id: `${run}.succeeded` };
  if (isProgressDurable(origin)) await publishEvent(rig.js, Subjects.sagaEvent(origin, run), ev);
  await publishEvent(rig.js, SagaEndSubjects.ended(origin, run), ev);
}

test('the catalogue is seeded once: a second start changes nothing, products list what is available', async () => {
  const first = await audit();
  for (const c of Catalogue) assert.deepEqual(sku(first, c.sku), { initial: c.initial, available: c.initial, reserved: 0, sold: 0, soldK8s: 0 });
  const run = runId();
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-3', quantity: 2 }]));
  await rig.waitReplies(run, 1);
  const second = await inventory.startReplica();
  await second.stop();
  assert.equal(sku(await audit(), 'sku-3').available, Catalogue.find((c) => c.sku === 'sku-3')!.initial - 2, 'a restart does not re-seed');
  const products = await rig.query<Product[]>(QuerySubjects.products);
  assert.deepEqual(products.map((p) => p.sku), Catalogue.map((c) => c.sku));
  assert.equal(products.find((p) => p.sku === 'sku-3')!.available, Catalogue.find((c) => c.sku === 'sku-3')!.initial - 2);
  assert.ok(await rig.count(Streams.domainEvents.name, Subjects.domainEvent('inventory', 'stock_changed')) >= 1, 'stock_changed was published');
});

test('a reserve, then the same command again (another msg id) and a retry: one reservation, the same answer', async () => {
  const before = await audit();
  const run = runId();
  const cmd = reserve(run, [{ sku: 'sku-1', quantity: 2 }, { sku: 'sku-2', quantity: 1 }, { sku: 'sku-1', quantity: 1 }]);
  await rig.send('inventory', 'reserve', cmd, 'a');
  await rig.send('inventory', 'reserve', cmd, 'b');
  await rig.send('inventory', 'reserve', { ...cmd, attempt: 2 });
  const replies = await rig.waitReplies(run, 2);
  const output = { reservation: `${run}.reserve-inventory`, items: [{ sku: 'sku-1', quantity: 3 }, { sku: 'sku-2', quantity: 1 }] };
  assert.deepEqual(replies.map((r) => [r.attempt, r.outcome, r.output]), [
    [1, 'succeeded', output],
    [2, 'succeeded', output],
  ]);
  const now = await audit();
  assert.equal(sku(before, 'sku-1').available - sku(now, 'sku-1').available, 3);
  assert.equal(sku(now, 'sku-1').reserved - sku(before, 'sku-1').reserved, 3);
  assert.equal(sku(now, 'sku-2').reserved - sku(before, 'sku-2').reserved, 1);
  assert.ok(balanced(now));
});

test('all or nothing: an order short of one sku reserves none of the others, and names the short sku', async () => {
  const before = await audit();
  const run = runId();
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-4', quantity: 1 }, { sku: 'sku-rare', quantity: 51 }]));
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'failed');
  assert.equal(r!.error?.code, StepErrorCodes.outOfStock);
  assert.match(r!.error!.message, /sku-rare/);
  const run2 = runId();
  await rig.send('inventory', 'reserve', reserve(run2, [{ sku: 'no-such-sku', quantity: 1 }]));
  const [r2] = await rig.waitReplies(run2, 1);
  assert.equal(r2!.error?.code, StepErrorCodes.unknownSku);
  assert.deepEqual(await audit(), before);
});

test('a release returns the stock; a release before its reserve leaves a tombstone that refuses the late reserve', async () => {
  const before = await audit();
  const run = runId();
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-4', quantity: 5 }]));
  await rig.waitReplies(run, 1);
  await rig.send('inventory', 'release', release(run));
  await rig.send('inventory', 'release', release(run, { attempt: 2 }));
  const [, rel, rel2] = await rig.waitReplies(run, 3);
  assert.deepEqual([rel!.outcome, rel!.output], ['succeeded', { released: [{ sku: 'sku-4', quantity: 5 }] }]);
  assert.deepEqual(rel2!.output, rel!.output);
  assert.deepEqual(await audit(), before);

  const early = runId();
  await rig.send('inventory', 'release', release(early));
  const [tomb] = await rig.waitReplies(early, 1);
  assert.deepEqual([tomb!.outcome, tomb!.output], ['succeeded', { released: [] }]);
  await rig.send('inventory', 'reserve', reserve(early, [{ sku: 'sku-4', quantity: 5 }]));
  const [, late] = await rig.waitReplies(early, 2);
  assert.equal(late!.error?.code, StepErrorCodes.compensatedBeforeAction);
  assert.deepEqual(await audit(), before);
});

test('100 concurrent reserves of 1 unit of the scarce sku, on two replicas, never oversell: exactly 50 succeed', async () => {
  const other = await inventory.startReplica();
  try {
    const before = sku(await audit(), 'sku-rare');
    assert.equal(before.available, 50);
    const runs = Array.from({ length: 100 }, () => runId('rare'));
    await Promise.all(runs.map((r) => rig.send('inventory', 'reserve', reserve(r, [{ sku: 'sku-rare', quantity: 1 }, { sku: 'sku-1', quantity: 1 }]))));
    const outcomes = await Promise.all(runs.map(async (r) => (await rig.waitReplies(r, 1, 60_000))[0]!));
    const ok = outcomes.filter((o) => o.outcome === 'succeeded').length;
    assert.equal(ok, 50);
    assert.ok(outcomes.filter((o) => o.outcome === 'failed').every((o) => o.error?.code === StepErrorCodes.outOfStock && /sku-rare/.test(o.error.message)));
    const now = await audit();
    assert.deepEqual(sku(now, 'sku-rare'), { initial: 50, available: 0, reserved: 50, sold: 0, soldK8s: 0 });
    assert.ok(balanced(now));
    // give the scarce sku back for the other tests
    await Promise.all(runs.map((r) => rig.send('inventory', 'release', release(r))));
    await Promise.all(runs.map((r) => rig.waitReplies(r, 2, 60_000)));
    assert.equal(sku(await audit(), 'sku-rare').available, 50);
  } finally {
    await other.stop();
  }
});

test("a succeeded run's reservation becomes a sale, per origin, once however often the event comes", async () => {
  const before = await audit();
  const order = runId();
  const k8s = runId('k8s');
  await rig.send('inventory', 'reserve', reserve(order, [{ sku: 'sku-2', quantity: 2 }]));
  await rig.send('inventory', 'reserve', reserve(k8s, [{ sku: 'sku-2', quantity: 3 }], { origin: 'k8s' }));
  const [r1] = await rig.waitReplies(order, 1);
  const [r2] = await rig.waitReplies(k8s, 1);
  await succeeded(order, 'order', r1!.output);
  await succeeded(order, 'order', r1!.output);
  await succeeded(k8s, 'k8s', r2!.output);
  // a run cannot sell another run's reservation
  const other = runId();
  await rig.send('inventory', 'reserve', reserve(other, [{ sku: 'sku-2', quantity: 1 }]));
  const [r3] = await rig.waitReplies(other, 1);
  await succeeded(runId(), 'order', r3!.output);
  const want = { ...sku(before, 'sku-2'), available: sku(before, 'sku-2').available - 6, reserved: sku(before, 'sku-2').reserved + 1 };
  want.sold += 2;
  want.soldK8s += 3;
  await waitFor(async () => JSON.stringify(sku(await audit(), 'sku-2')) === JSON.stringify(want), { what: 'the sales in the books' });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(sku(await audit(), 'sku-2'), want);
  // a release after the sale is refused (the engine compensates only unfinished runs)
  await rig.send('inventory', 'release', release(order));
  const [, refused] = await rig.waitReplies(order, 2);
  assert.equal(refused!.error?.code, StepErrorCodes.alreadySold);
});

test('crash after commit of a reserve: no reply, stock taken once; after a restart the redelivered command answers from the record', async () => {
  const crashes = await inventory.restartCrashing();
  const before = await audit();
  const run = runId();
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-3', quantity: 4 }], { faults: [fault('inventory.reserve', { crashAfterCommit: true })] }));
  await crashes.happened();
  assert.equal((await rig.replies(run)).length, 0);
  await inventory.restart();
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'succeeded');
  assert.equal(crashes.count, 1);
  const now = await audit();
  assert.equal(sku(before, 'sku-3').available - sku(now, 'sku-3').available, 4);
  assert.equal(sku(now, 'sku-3').reserved - sku(before, 'sku-3').reserved, 4);
});

test('an injected failure of reserve is stored (a repeat says the same); of release it is not (the retry releases)', async () => {
  const before = await audit();
  const run = runId();
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-4', quantity: 1 }], { faults: [fault('inventory.reserve', { failureRate: 1 })] }));
  await rig.send('inventory', 'reserve', reserve(run, [{ sku: 'sku-4', quantity: 1 }], { attempt: 2 }));
  const replies = await rig.waitReplies(run, 2);
  assert.deepEqual(replies.map((r) => r.error?.code), [StepErrorCodes.injectedFailure, StepErrorCodes.injectedFailure]);
  assert.deepEqual(await audit(), before);

  const run2 = runId();
  await rig.send('inventory', 'reserve', reserve(run2, [{ sku: 'sku-4', quantity: 1 }]));
  await rig.waitReplies(run2, 1);
  await rig.send('inventory', 'release', release(run2, { faults: [fault('inventory.release', { failureRate: 1 })] }));
  await rig.waitReplies(run2, 2);
  await rig.send('inventory', 'release', release(run2, { attempt: 2 }));
  const r2 = await rig.waitReplies(run2, 3);
  assert.deepEqual(r2.map((r) => r.outcome), ['succeeded', 'failed', 'succeeded']);
  assert.deepEqual(await audit(), before);
});
