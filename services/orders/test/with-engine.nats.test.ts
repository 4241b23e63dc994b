/**
 * Orders with the real saga engine (@sagamesh/orchestrator, in-process) and scripted participants:
 * the whole loop place → saga → end event → order status, over one real nats-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { QuerySubjects, STEP_REPLY_TYPE, StepCommand, Streams, Subjects, validator, type StepReply } from '@sagamesh/contracts';
import { type ConsumerHandle, createLogger, createMetrics, decodeMessage, loadConfig, publishEvent, runConsumer, type Started } from '@sagamesh/runtime';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { OrchestratorConfigSchema, start as startEngine } from '@sagamesh/orchestrator';
import { OrdersConfigSchema, start, type OrdersService } from '../src/index.ts';
import { http, readAll } from './helpers.ts';

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let engine: Started;
let orders: OrdersService;
let participants: ConsumerHandle;
const commands: StepCommand[] = [];

const commandValidator = validator(StepCommand, 'step command');
/** Every participant at once: says yes, except a charge for customer `c-broke`. */
function startParticipants(): ConsumerHandle {
  return runConsumer({
    nc, js, jsm,
    stream: Streams.commands.name,
    consumer: { durable: 'test-participants', filterSubjects: [Subjects.allCommands] },
    concurrency: 16,
    service: 'test',
    log: createLogger('test-participants', 'silent'),
    metrics: createMetrics('test'),
    async handler(m) {
      const cmd = decodeMessage(m, commandValidator).data;
      commands.push(cmd);
      const declined = cmd.step === 'charge-payment' && cmd.action === 'do' && cmd.input.customerId === 'c-broke';
      const reply: StepReply = {
        runId: cmd.runId, step: cmd.step, action: cmd.action, attempt: cmd.attempt,
        outcome: declined ? 'failed' : 'succeeded',
        ...(declined ? { error: { code: 'card_declined', message: 'insufficient funds' } } : {}),
      };
      await publishEvent(js, Subjects.reply(cmd.runId), {
        type: STEP_REPLY_TYPE, source: 'test', data: reply, correlationId: cmd.runId,
        msgId: `${cmd.runId}.${cmd.step}.${cmd.action}.${cmd.attempt}.reply`,
      });
      return 'ack';
    },
  });
}

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  const env = { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' };
  engine = await startEngine(loadConfig(OrchestratorConfigSchema, env));
  orders = await start(loadConfig(OrdersConfigSchema, env));
  participants = startParticipants();
});

after(async () => {
  await participants?.stop();
  await orders?.stop();
  await engine?.stop();
  await nc?.close();
  await server?.stop();
});

const statusOf = async (orderId: string) => (await http(orders.port, 'GET', `/orders/${orderId}`)).body?.status;

test('an order whose saga succeeds is CONFIRMED, and its confirmed event is published once', async () => {
  assert.equal((await http(orders.port, 'POST', '/orders', { orderId: 'ord-real-ok', customerId: 'c-1', items: [{ sku: 'sku-2', quantity: 1 }] })).status, 202);
  await waitFor(async () => (await statusOf('ord-real-ok')) === 'CONFIRMED', { what: 'order confirmed', timeoutMs: 20_000 });
  const run = commands.filter((c) => c.runId === 'ord-real-ok' && c.action === 'do');
  assert.deepEqual(run.map((c) => c.step), ['reserve-inventory', 'charge-payment', 'create-shipment']);
  assert.deepEqual(run[1]!.input, { customerId: 'c-1', items: [{ sku: 'sku-2', quantity: 1 }], amountCents: 12900 });
  await waitFor(async () => (await readAll(js, Streams.domainEvents.name, 'events.order.>')).some((m) => m.headers?.get('ce-correlationid') === 'ord-real-ok'), { what: 'domain event' });
  const published = (await readAll(js, Streams.domainEvents.name, 'events.order.>')).filter((m) => m.headers?.get('ce-correlationid') === 'ord-real-ok');
  assert.deepEqual(published.map((m) => m.subject), ['events.order.confirmed']);
});

test('an order whose payment is declined is compensated: CANCELLED with the reason', async () => {
  assert.equal((await http(orders.port, 'POST', '/orders', { orderId: 'ord-real-broke', customerId: 'c-broke', items: [{ sku: 'sku-1', quantity: 1 }] })).status, 202);
  await waitFor(async () => (await statusOf('ord-real-broke')) === 'CANCELLED', { what: 'order cancelled', timeoutMs: 20_000 });
  const view = (await http(orders.port, 'GET', '/orders/ord-real-broke')).body;
  assert.match(view.reason, /card_declined|insufficient funds|charge/);
  assert.ok(commands.some((c) => c.runId === 'ord-real-broke' && c.step === 'reserve-inventory' && c.action === 'compensate'), 'the reservation was released');
  const books = (await nc.request(QuerySubjects.books('orders'), '', { timeout: 5000 })).json<{ confirmed: { count: number; total: number }; cancelled: { count: number } }>();
  assert.deepEqual(books.confirmed, { count: 1, total: 12900 });
  assert.equal(books.cancelled.count, 1);
});
