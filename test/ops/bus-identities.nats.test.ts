/**
 * Identities on the bus: a real nats-server with the config the contracts' permissions generate (the one make dev and
 * the e2e tests run on). Every forgery is refused by the server itself, and the same request by the identity that
 * owns it goes through (so a refusal is the permission, not a broken set-up). The platform working end to end under
 * these permissions is the e2e tier's job (scripts/lib/platform.ts runs it with authorization).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inboxPrefixOf, type NatsIdentity, ServiceIdentities, Streams, Subjects } from '@sagamesh/contracts';
import { isPermissionDenied, provisionPlatform } from '@sagamesh/runtime';
import { generateNatsUsers, type NatsServer, startNatsServer } from '@sagamesh/testing';

const users = generateNatsUsers();
let server: NatsServer;
let admin: NatsConnection;
const open: NatsConnection[] = [];

async function as(identity: NatsIdentity): Promise<NatsConnection> {
  // As the services connect (connectNats): with the identity's own inbox prefix.
  const nc = await connect({ servers: server.url, ...users[identity], inboxPrefix: inboxPrefixOf(identity), reconnect: false });
  open.push(nc);
  return nc;
}
const messages = async (stream: string) => (await (await jetstreamManager(admin)).streams.info(stream)).state.messages;
/** The forged reply: a participant's "succeeded" for a step of run r-1, as the engine would accept it. */
const forgedReply = JSON.stringify({ runId: 'r-1', step: 'charge-payment', attempt: 1, outcome: 'succeeded', result: { chargeId: 'forged' } });

async function refused(what: string, op: () => Promise<unknown>): Promise<void> {
  await assert.rejects(op, (err: unknown) => {
    assert.ok(isPermissionDenied(err), `${what}: refused for another reason: ${(err as Error).message}`);
    return true;
  }, `${what}: the server let it through`);
}

before(async () => {
  server = await startNatsServer({ auth: users });
  admin = await connect({ servers: server.url, ...users.admin });
  await provisionPlatform(admin);
});
after(async () => {
  await Promise.all(open.map((nc) => nc.close()));
  await admin?.close();
  await server?.stop();
});

describe('identities on the bus (nats-server with the generated config)', () => {
  it('refuses a client without credentials, and one with a wrong password', async () => {
    await assert.rejects(connect({ servers: server.url, reconnect: false }), /Authorization Violation/i);
    await assert.rejects(connect({ servers: server.url, user: 'payments', pass: 'not-its-password', reconnect: false }), /Authorization Violation/i);
  });

  it('refuses cmd.payments.refund from every identity but the orchestrator (only the engine commands participants)', async () => {
    const before = await messages(Streams.commands.name);
    for (const id of ServiceIdentities.filter((i) => i !== 'orchestrator')) {
      await refused(`${id} publishing ${Subjects.command('payments', 'refund')}`, async () => jetstream(await as(id)).publish(Subjects.command('payments', 'refund'), '{}', { timeout: 5000 }));
    }
    assert.equal(await messages(Streams.commands.name), before, 'no forged command reached COMMANDS');
    // The orchestrator may.
    await jetstream(await as('orchestrator')).publish(Subjects.command('payments', 'refund'), '{}', { msgID: 'r-1.refund.1' });
    assert.equal(await messages(Streams.commands.name), before + 1);
  });

  it('refuses a forged "succeeded" reply on saga.replies.<runId> from every non-participant (only participants reply)', async () => {
    const before = await messages(Streams.replies.name);
    for (const id of ['gateway', 'orders', 'orchestrator', 'notifications', 'operator'] as const) {
      await refused(`${id} publishing ${Subjects.reply('r-1')}`, async () => jetstream(await as(id)).publish(Subjects.reply('r-1'), forgedReply, { timeout: 5000 }));
    }
    assert.equal(await messages(Streams.replies.name), before, 'no forged reply reached SAGA_REPLIES');
    await jetstream(await as('payments')).publish(Subjects.reply('r-1'), forgedReply, { msgID: 'r-1.charge-payment.1' });
    assert.equal(await messages(Streams.replies.name), before + 1, 'a participant may reply');
  });

  it('refuses deleting or purging a stream, and creating one, to every service identity (only the admin administers streams)', async () => {
    for (const id of ServiceIdentities) {
      const jsm = await jetstreamManager(await as(id));
      await refused(`${id} deleting ${Streams.commands.name}`, () => jsm.streams.delete(Streams.commands.name));
      await refused(`${id} purging ${Streams.orders.name}`, () => jsm.streams.purge(Streams.orders.name));
      await refused(`${id} creating a stream`, () => jsm.streams.add({ name: 'FORGED', subjects: ['forged.>'] }));
      await refused(`${id} deleting a bucket`, () => jsm.streams.delete('KV_payments'));
    }
    const jsm = await jetstreamManager(admin);
    for (const s of Object.values(Streams)) assert.equal((await jsm.streams.info(s.name)).config.name, s.name, `${s.name} is still there`);
  });

  it("refuses a write to another identity's bucket, and reading another's inbox", async () => {
    await refused('payments writing the inventory bucket', async () => jetstream(await as('payments')).publish('$KV.inventory.stock.sku-1', '{}', { timeout: 5000 }));
    const nc = await as('gateway');
    const denied = await new Promise<unknown>((resolve) => {
      nc.subscribe(`${inboxPrefixOf('orders')}.>`, { callback: (err) => resolve(err) });
      setTimeout(() => resolve(undefined), 5000).unref();
    });
    assert.ok(isPermissionDenied(denied), `the gateway subscribing orders' inbox: ${String(denied)}`);
  });
});
