import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Buckets,
  inboxPrefixOf,
  JsApi,
  mayPublish,
  maySubscribe,
  NatsIdentities,
  natsPermissions,
  ParticipantNames,
  QuerySubjects,
  renderNatsAuthorization,
  SagaEndSubjects,
  ServiceIdentities,
  Streams,
  subjectMatches,
  Subjects,
} from '@sagamesh/contracts';

const who = (can: (id: (typeof NatsIdentities)[number]) => boolean) => NatsIdentities.filter(can).sort();
const services = ServiceIdentities;
const allStreams = Object.values(Streams).map((s) => s.name);
const allKvStreams = Object.values(Buckets).map((b) => `KV_${b}`);

describe('subjectMatches', () => {
  it('matches NATS wildcards: * one token, > the rest (at least one token)', () => {
    assert.ok(subjectMatches('cmd.>', 'cmd.payments.refund'));
    assert.ok(!subjectMatches('cmd.>', 'cmd'));
    assert.ok(subjectMatches('saga.engine.*', 'saga.engine.get'));
    assert.ok(!subjectMatches('saga.engine.*', 'saga.engine.get.x'));
    assert.ok(subjectMatches('$JS.API.INFO', '$JS.API.INFO'));
    assert.ok(!subjectMatches('a.b', 'a.b.c'));
  });
});

describe('natsPermissions: who may do what on the bus', () => {
  it('only the orchestrator (and the admin) may command participants', () => {
    for (const p of ParticipantNames) {
      for (const c of ['reserve', 'release', 'charge', 'refund', 'create', 'cancel']) {
        assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.command(p, c))), ['admin', 'orchestrator'], Subjects.command(p, c));
      }
    }
  });
  it('only participants (and the admin) may reply to the engine', () => {
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.reply('ord-1'))), ['admin', 'inventory', 'payments', 'shipping']);
  });
  it('only the orchestrator (and the admin) may publish saga progress and ends', () => {
    for (const s of [Subjects.sagaEvent('order', 'r1'), Subjects.sagaEvent('k8s', 'r1'), SagaEndSubjects.ended('order', 'r1')]) {
      assert.deepEqual(who((id) => mayPublish(natsPermissions(id), s)), ['admin', 'orchestrator'], s);
    }
  });
  it('only the orchestrator answers the engine API; orders, the gateway and the operator may call what they use', () => {
    assert.deepEqual(who((id) => maySubscribe(natsPermissions(id), Subjects.engine('start'))), ['admin', 'orchestrator']);
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.engine('start'))), ['admin', 'operator', 'orders']);
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.engine('get'))), ['admin', 'gateway', 'operator', 'orders']);
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.engine('cancel'))), ['admin', 'operator']);
  });
  it('only orders (and the admin) appends to the order event store and publishes order events', () => {
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.orderStream('ord-1'))), ['admin', 'orders']);
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.domainEvent('order', 'confirmed'))), ['admin', 'orders']);
    assert.deepEqual(who((id) => mayPublish(natsPermissions(id), Subjects.domainEvent('inventory', 'stock_changed'))), ['admin', 'inventory']);
  });
  it('each bucket is written by its owner only (faults: the gateway); participants read the faults', () => {
    const writers = (b: string) => who((id) => mayPublish(natsPermissions(id), `$KV.${b}.k`));
    assert.deepEqual(writers(Buckets.sagaRuns), ['admin', 'orchestrator']);
    assert.deepEqual(writers(Buckets.sagaDefinitions), ['admin', 'orchestrator']);
    assert.deepEqual(writers(Buckets.faults), ['admin', 'gateway']);
    assert.deepEqual(writers(Buckets.idempotency), ['admin', 'gateway']);
    assert.deepEqual(writers(Buckets.orderView), ['admin', 'orders']);
    for (const p of ParticipantNames) assert.deepEqual(writers(Buckets[p]), ['admin', p]);
    assert.deepEqual(writers(Buckets.notifications), ['admin', 'notifications']);
    for (const p of ParticipantNames) assert.ok(mayPublish(natsPermissions(p), JsApi.directGet(`KV_${Buckets.faults}`)), `${p} reads the faults`);
  });
  it('only the owner answers its books; the gateway asks', () => {
    for (const s of ['inventory', 'payments', 'shipping', 'orders']) {
      assert.deepEqual(who((id) => maySubscribe(natsPermissions(id), QuerySubjects.books(s))), ['admin', s].sort());
      assert.deepEqual(who((id) => mayPublish(natsPermissions(id), QuerySubjects.books(s))), ['admin', 'gateway']);
    }
  });
  it('no service identity may create, update or delete a stream (a bucket is a stream), nor purge one but orders its own view', () => {
    for (const id of services) {
      const p = natsPermissions(id);
      for (const stream of [...allStreams, ...allKvStreams]) {
        for (const api of [JsApi.streamCreate, JsApi.streamUpdate, JsApi.streamDelete]) assert.ok(!mayPublish(p, api(stream)), `${id} may not ${api(stream)}`);
        const purgeable = id === 'orders' && stream === `KV_${Buckets.orderView}`;
        assert.equal(mayPublish(p, JsApi.streamPurge(stream)), purgeable, `${id} ${purgeable ? 'may' : 'may not'} purge ${stream}`);
      }
      assert.ok(!mayPublish(p, '$JS.API.STREAM.DELETE.ANY'), `${id}: deny covers any stream`);
    }
  });
  it('only the admin creates, updates or deletes streams', () => {
    for (const id of NatsIdentities) {
      const p = natsPermissions(id);
      for (const s of [JsApi.streamCreate('X'), JsApi.streamDelete('X')]) assert.equal(mayPublish(p, s), id === 'admin', `${id}: ${s}`);
    }
  });
  it('a consumer acks, fetches and dead-letters only its own', () => {
    const p = natsPermissions('payments');
    assert.ok(mayPublish(p, JsApi.next(Streams.commands.name, 'payments-commands')));
    assert.ok(!mayPublish(p, JsApi.next(Streams.commands.name, 'inventory-commands')));
    assert.ok(mayPublish(p, `$JS.ACK.${Streams.commands.name}.payments-commands.1.2.3.4.5`));
    assert.ok(!mayPublish(p, `$JS.ACK.${Streams.commands.name}.inventory-commands.1.2.3.4.5`));
    assert.ok(mayPublish(p, Subjects.deadLetter(Subjects.command('payments', 'charge'))));
    assert.ok(!mayPublish(p, Subjects.deadLetter(Subjects.command('inventory', 'reserve'))));
  });
  it('each process subscribes only its own inbox', () => {
    for (const id of services) {
      for (const other of services) assert.equal(maySubscribe(natsPermissions(id), `${inboxPrefixOf(other)}.x`), id === other, `${id} on ${other}'s inbox`);
      assert.ok(!maySubscribe(natsPermissions(id), '_INBOX.>'));
    }
  });
});

describe('renderNatsAuthorization', () => {
  it('renders one user per identity, with plain or environment passwords, subjects quoted', () => {
    const conf = renderNatsAuthorization([
      { identity: 'payments', password: { value: 'p"w' } },
      { identity: 'admin', password: { env: 'NATS_PASSWORD_ADMIN' } },
    ]);
    assert.match(conf, /user: "payments", password: "p\\"w"/);
    assert.match(conf, /user: "admin", password: \$NATS_PASSWORD_ADMIN,/);
    assert.match(conf, /"\$JS\.API\.CONSUMER\.MSG\.NEXT\.COMMANDS\.payments-commands"/);
    assert.match(conf, /allow_responses: true/);
  });
});
