import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { Buckets, Consumers, QuerySubjects, StepErrorCodes, Streams, Subjects, traceIdOf, type PaymentsBooksReply } from '@sagamesh/contracts';
import { StepLedger } from '@sagamesh/participant';
import { withSpan } from '@sagamesh/runtime';
import { command, fault, runId, startTestTracing, useParticipantService, waitFor } from '@sagamesh/testing';
import { PaymentsConfigSchema, start } from '../src/index.ts';
import type { PaymentRecord } from '../src/payments.ts';

const payments = useParticipantService(PaymentsConfigSchema, start);
const { rig } = payments;
const books = () => rig.query<PaymentsBooksReply>(QuerySubjects.books('payments'));

test('a charge replies succeeded with de-dup id key.attempt, and the books count it per origin', async () => {
  const before = await books();
  const run = runId();
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 1234 }));
  const k8sRun = runId('k8s');
  await rig.send('payments', 'charge', command(k8sRun, 'pay', 'do', { amountCents: 500 }, { origin: 'k8s' }));
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'succeeded');
  assert.deepEqual(r!.output, { chargedCents: 1234 });
  assert.deepEqual([r!.runId, r!.step, r!.action, r!.attempt], [run, 'charge-payment', 'do', 1]);
  await rig.waitReplies(k8sRun, 1);
  const now = await books();
  assert.equal(now.order.charged - before.order.charged, 1234);
  assert.equal(now.k8s.charged - before.k8s.charged, 500);
});

test('the reply carries the trace context of the command it answers', async () => {
  const tracing = startTestTracing();
  try {
    const run = runId();
    const traceId = await withSpan('test engine', {}, async (span) => {
      await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 1 }));
      return span.spanContext().traceId;
    });
    await rig.waitReplies(run, 1);
    const [stored] = await rig.replies(run);
    assert.equal(traceIdOf(stored!.traceparent), traceId);
  } finally {
    await tracing.stop();
  }
});

test('the same command published twice (different msg ids, same key and attempt) charges once and is answered once', async () => {
  const before = await books();
  const run = runId();
  const cmd = command(run, 'charge-payment', 'do', { amountCents: 700 });
  await rig.send('payments', 'charge', cmd, 'first');
  await rig.send('payments', 'charge', cmd, 'second');
  // a retry (attempt 2) of the same step is answered again, from the stored result
  await rig.send('payments', 'charge', { ...cmd, attempt: 2 });
  const replies = await rig.waitReplies(run, 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await rig.replies(run)).length, 2, 'the duplicate reply of attempt 1 was de-duplicated by JetStream');
  assert.deepEqual(replies.map((r) => [r.attempt, r.outcome, r.output]), [
    [1, 'succeeded', { chargedCents: 700 }],
    [2, 'succeeded', { chargedCents: 700 }],
  ]);
  const now = await books();
  assert.equal(now.order.charged - before.order.charged, 700);
});

test('a compensation before its action succeeds as a no-op and leaves a tombstone that refuses the late charge', async () => {
  const before = await books();
  const run = runId();
  await rig.send('payments', 'refund', command(run, 'charge-payment', 'compensate', {}));
  const [refund] = await rig.waitReplies(run, 1);
  assert.equal(refund!.outcome, 'succeeded');
  assert.deepEqual(refund!.output, { refundedCents: 0 });
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 999 }));
  const [, late] = await rig.waitReplies(run, 2);
  assert.equal(late!.outcome, 'failed');
  assert.equal(late!.error?.code, StepErrorCodes.compensatedBeforeAction);
  assert.deepEqual(await books(), before);
});

test('a refund gives back what the charge took, once however often it is repeated', async () => {
  const before = await books();
  const run = runId();
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 250 }));
  await rig.waitReplies(run, 1);
  for (const attempt of [1, 1, 2]) await rig.send('payments', 'refund', command(run, 'charge-payment', 'compensate', {}, { attempt }));
  const replies = await rig.waitReplies(run, 3);
  assert.deepEqual(replies.slice(1).map((r) => [r.action, r.attempt, r.outcome, r.output]), [
    ['compensate', 1, 'succeeded', { refundedCents: 250 }],
    ['compensate', 2, 'succeeded', { refundedCents: 250 }],
  ]);
  const now = await books();
  assert.equal(now.order.charged - before.order.charged, 250);
  assert.equal(now.order.refunded - before.order.refunded, 250);
});

test("a refund is a record of its own (the charge's is never written again); a step of the older layout, refunded in the charge's record, reads the same", async () => {
  const kv = await new Kvm(rig.js).open(Buckets.payments);
  const before = await books();
  const run = runId();
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 300 }));
  await rig.waitReplies(run, 1);
  const charge = await kv.get(StepLedger.keyOf(`${run}.charge-payment`));
  await rig.send('payments', 'refund', command(run, 'charge-payment', 'compensate', {}));
  await rig.waitReplies(run, 2);
  assert.equal((await kv.get(StepLedger.keyOf(`${run}.charge-payment`)))?.revision, charge?.revision, "the charge's record is not replaced");
  const refund = (await kv.get(StepLedger.keyOf(`${run}.charge-payment.compensate`)))?.json<PaymentRecord>();
  assert.deepEqual(refund, { origin: 'order', action: { outcome: 'succeeded', output: { chargedCents: 300 } }, data: { amountCents: 300 }, compensation: { outcome: 'succeeded', output: { refundedCents: 300 } } });

  // As the older layout left it at rest: one record holding the charge and its refund.
  const old = runId();
  const ok = { outcome: 'succeeded' as const };
  await kv.create(StepLedger.keyOf(`${old}.charge-payment`), JSON.stringify({ origin: 'order', action: { ...ok, output: { chargedCents: 40 } }, data: { amountCents: 40 }, compensation: { ...ok, output: { refundedCents: 40 } } }));
  await rig.send('payments', 'refund', command(old, 'charge-payment', 'compensate', {}));
  const [reply] = await rig.waitReplies(old, 1);
  assert.deepEqual(reply!.output, { refundedCents: 40 }, 'the stored refund');
  assert.equal(await kv.get(StepLedger.keyOf(`${old}.charge-payment.compensate`)), null, 'no second refund record');
  const now = await books();
  assert.equal(now.order.charged - before.order.charged, 340);
  assert.equal(now.order.refunded - before.order.refunded, 340);
});

test('a charge without amountCents, an unknown command and a refund sent as an action get failed replies with clear codes', async () => {
  const run = runId();
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { customerId: 'c-1' }));
  const [missing] = await rig.waitReplies(run, 1);
  assert.equal(missing!.error?.code, StepErrorCodes.invalidInput);
  assert.match(missing!.error!.message, /amountCents/);

  const run2 = runId();
  await rig.send('payments', 'teleport', command(run2, 'x', 'do', {}));
  const [unknown] = await rig.waitReplies(run2, 1);
  assert.equal(unknown!.error?.code, StepErrorCodes.unknownCommand);

  const run3 = runId();
  await rig.send('payments', 'refund', command(run3, 'charge-payment', 'do', {}));
  const [wrongRole] = await rig.waitReplies(run3, 1);
  assert.equal(wrongRole!.error?.code, StepErrorCodes.invalidCommand);
});

test('an unreadable command is dead-lettered with its reason', async () => {
  const before = await rig.count(Streams.deadLetters.name, Subjects.deadLetter('cmd.payments.charge'));
  await rig.js.publish(Subjects.command('payments', 'charge'), 'not json at all');
  await waitFor(async () => (await rig.count(Streams.deadLetters.name, Subjects.deadLetter('cmd.payments.charge'))) === before + 1, {
    what: 'the dead letter',
  });
  const dl = await rig.jsm.streams.getMessage(Streams.deadLetters.name, { last_by_subj: Subjects.deadLetter('cmd.payments.charge') });
  assert.match(dl!.header.get('sagamesh-dead-letter-reason'), /poison/);
});

test("an action's injected failure is its stored business result; a compensation's is not stored, so its retry succeeds", async () => {
  const before = await books();
  const run = runId();
  const failCharge = [fault('payments.charge', { failureRate: 1 })];
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 100 }, { faults: failCharge }));
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 100 }, { attempt: 2 }));
  const replies = await rig.waitReplies(run, 2);
  assert.deepEqual(replies.map((r) => r.error?.code), [StepErrorCodes.injectedFailure, StepErrorCodes.injectedFailure]);

  const run2 = runId();
  await rig.send('payments', 'charge', command(run2, 'charge-payment', 'do', { amountCents: 40 }));
  await rig.waitReplies(run2, 1);
  const failRefund = [fault('payments.refund', { failureRate: 1 })];
  await rig.send('payments', 'refund', command(run2, 'charge-payment', 'compensate', {}, { faults: failRefund }));
  await rig.waitReplies(run2, 2);
  await rig.send('payments', 'refund', command(run2, 'charge-payment', 'compensate', {}, { attempt: 2 }));
  const r2 = await rig.waitReplies(run2, 3);
  assert.deepEqual(r2.map((r) => r.outcome), ['succeeded', 'failed', 'succeeded']);
  const now = await books();
  assert.equal(now.order.charged - before.order.charged, 40);
  assert.equal(now.order.refunded - before.order.refunded, 40);
});

test("with fault injection off (a cluster by default) a command's faults are not applied: the charge happens", async () => {
  await payments.restart({ FAULT_INJECTION: 'false' });
  try {
    const run = runId();
    await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 70 }, { faults: [fault('payments.charge', { failureRate: 1 })] }));
    const [reply] = await rig.waitReplies(run, 1);
    assert.equal(reply!.outcome, 'succeeded');
  } finally {
    await payments.restart();
  }
});

test('crash after commit: the charge is stored, no reply; after a restart the redelivered command replies with the stored result, charged once', async () => {
  const crashes = await payments.restartCrashing();
  const before = await books();
  const run = runId();
  const crash = [fault('payments.charge', { crashAfterCommit: true })];
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 4200 }, { faults: crash }));
  await crashes.happened();
  assert.equal((await rig.replies(run)).length, 0, 'no reply before the crash');
  const kv = await new Kvm(rig.js).open(Buckets.payments);
  const rec = (await kv.get(StepLedger.keyOf(`${run}.charge-payment`)))?.json<PaymentRecord>();
  assert.deepEqual(rec?.data, { amountCents: 4200 }, 'the charge was committed before the crash');

  await payments.restart();
  const [r] = await rig.waitReplies(run, 1);
  assert.equal(r!.outcome, 'succeeded');
  assert.deepEqual(r!.output, { chargedCents: 4200 });
  assert.equal(crashes.count, 1, 'a replay does not crash again');
  assert.equal((await books()).order.charged - before.order.charged, 4200);
});

test('injected latency longer than AckWait: the handler keeps its message (working), so it is neither redelivered nor charged twice', async () => {
  await payments.restart({ COMMAND_ACK_WAIT_MS: '1000' });
  const consumer = () => rig.jsm.consumers.info(Streams.commands.name, Consumers.participant('payments'));
  assert.equal((await consumer()).config.ack_wait, 1000 * 1e6);
  const redeliveredBefore = (await consumer()).num_redelivered;
  const before = await books();
  const run = runId();
  const slow = [fault('payments.charge', { latencyMs: 2500 })];
  const t0 = Date.now();
  await rig.send('payments', 'charge', command(run, 'charge-payment', 'do', { amountCents: 3 }, { faults: slow }));
  await rig.waitReplies(run, 1);
  assert.ok(Date.now() - t0 >= 2500, 'the reply came after the injected latency');
  assert.equal((await consumer()).num_redelivered, redeliveredBefore, 'not redelivered while working');
  assert.equal((await books()).order.charged - before.order.charged, 3);
});
