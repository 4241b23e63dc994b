/**
 * The NATS construct's config on real nats-servers (.tools/bin): the pod's config passes `nats-server -t`
 * (which refuses unknown fields and missing $VARIABLES); the same generator, given loopback routes, forms a
 * 3-server JetStream cluster on which the runtime's stream and bucket creation with JETSTREAM_REPLICAS=3 gives
 * R3 (surviving one server killed); and the `accounts` slot really authenticates.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Buckets, Streams } from '@sagamesh/contracts';
import { declarePlatformStreams, ensureKv, ensureStreams, JetStreamPublisher, openBucket, provisionPlatform, StreamConfigError } from '@sagamesh/runtime';
import { freePort, natsServerBinary, startNatsServer, waitFor } from '@sagamesh/testing';
import { Chart, Testing } from 'cdk8s';
import { NatsCluster, type NatsClusterProps, natsServerConf, type NatsServerConfOptions } from '../src/nats.ts';

const bin = natsServerBinary();
const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-nats-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function podConfig(props: NatsClusterProps = {}): string {
  return new NatsCluster(new Chart(Testing.app(), 'test'), 'nats', props).config;
}

/** `nats-server -t -c <file>`: exit status and what it printed. */
function configTest(conf: string, env: Record<string, string>): { ok: boolean; out: string } {
  const file = path.join(dir, `t-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, conf);
  const r = spawnSync(bin, ['-t', '-c', file], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

const accounts: NatsClusterProps = {
  accounts: [
    {
      name: 'SAGAMESH',
      jetstream: true,
      users: [{ user: 'orders', password: { secret: 'nats-users', key: 'orders' }, permissions: { publish: { allow: ['cmd.>', '$JS.API.>'], deny: ['cmd.payments.refund'] }, subscribe: { allow: ['_INBOX.>'] }, allowResponses: true } }],
    },
    { name: 'SYS', jetstream: false, users: [{ user: 'sys', password: { secret: 'nats-sys', key: 'password' } }] },
  ],
  systemAccount: 'SYS',
};

describe('the pod config passes nats-server -t', () => {
  it('three servers (routes, JetStream, monitoring, lame duck), with the pod name from the environment', () => {
    const r = configTest(podConfig(), { POD_NAME: 'nats-0' });
    assert.ok(r.ok, r.out);
    assert.match(r.out, /configuration file .* is valid/);
  });

  it('without POD_NAME the server refuses to start (so the pod spec must set it)', () => {
    const r = configTest(podConfig(), {});
    assert.equal(r.ok, false);
    assert.match(r.out, /variable reference for 'POD_NAME'/);
  });

  it('one server, and the accounts slot with passwords from the environment', () => {
    assert.ok(configTest(podConfig({ replicas: 1 }), { POD_NAME: 'nats-0' }).ok);
    const env = { POD_NAME: 'nats-0', NATS_PASSWORD_ORDERS: 'o-secret', NATS_PASSWORD_SYS: 's-secret' };
    const r = configTest(podConfig(accounts), env);
    assert.ok(r.ok, r.out);
    assert.match(configTest(podConfig(accounts), { POD_NAME: 'nats-0' }).out, /variable reference for 'NATS_PASSWORD_ORDERS'/);
  });

  it('the check can fail: nats-server refuses a field it does not know', () => {
    const r = configTest(`${podConfig()}no_such_option: 1\n`, { POD_NAME: 'nats-0' });
    assert.equal(r.ok, false);
    assert.match(r.out, /unknown field "no_such_option"/);
  });
});

interface Server {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** One nats-server from the construct's generator, on loopback ports. */
function startServer(name: string, conf: NatsServerConfOptions, env: Record<string, string> = {}): Server {
  const file = path.join(dir, `${name}.conf`);
  writeFileSync(file, natsServerConf(conf));
  const child = spawn(bin, ['-a', '127.0.0.1', '-c', file], { stdio: 'ignore', env: { PATH: process.env.PATH ?? '', ...env } });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { name, url: `nats://127.0.0.1:${conf.clientPort}`, child, exited };
}

async function serverConf(name: string, clientPort: number, routePort: number, routes: number[]): Promise<NatsServerConfOptions> {
  const store = path.join(dir, name);
  return {
    serverName: name,
    clientPort,
    monitorPort: await freePort(),
    storeDir: store,
    pidFile: path.join(dir, `${name}.pid`),
    maxFileStoreMiB: 256,
    maxMemoryStoreMiB: 16,
    lameDuck: { durationSeconds: 30, gracePeriodSeconds: 1 },
    cluster: { name: 'sagamesh-test', port: routePort, routes: routes.map((p) => `nats://127.0.0.1:${p}`) },
    accounts: [],
  };
}

describe('a 3-server JetStream cluster from the same generator: streams and buckets with JETSTREAM_REPLICAS=3', () => {
  let servers: Server[] = [];
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let r3: KV;

  before(async () => {
    const clientPorts = [await freePort(), await freePort(), await freePort()];
    const routePorts = [await freePort(), await freePort(), await freePort()];
    const confs = await Promise.all([0, 1, 2].map((i) => serverConf(`n${i}`, clientPorts[i]!, routePorts[i]!, routePorts)));
    servers = confs.map((c, i) => startServer(`n${i}`, c));
    nc = await waitFor(() => connect({ servers: servers.map((s) => s.url), timeout: 1000 }), { what: 'a client connection', timeoutMs: 20_000, intervalMs: 200 });
    // JetStream answers once the three have elected a meta leader.
    jsm = await waitFor(() => jetstreamManager(nc, { timeout: 2000 }), { what: 'the JetStream meta leader', timeoutMs: 30_000, intervalMs: 250 });
  });
  after(async () => {
    await nc?.close();
    for (const s of servers) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
  });

  it('the platform streams are created with 3 replicas, one copy on each server', async () => {
    await waitFor(() => declarePlatformStreams(jsm, 3, undefined, 128).then(() => true), { what: 'the platform streams', timeoutMs: 30_000, intervalMs: 500 });
    for (const s of Object.values(Streams)) {
      const info = await jsm.streams.info(s.name);
      assert.equal(info.config.num_replicas, 3, s.name);
      assert.equal(info.cluster?.name, 'sagamesh-test');
      assert.deepEqual([info.cluster!.leader, ...(info.cluster!.replicas ?? []).map((r) => r.name)].sort(), ['n0', 'n1', 'n2'], s.name);
    }
  });

  it('a bucket with 3 replicas; an R1 stream and an R1 bucket are raised to R3 in place, keeping their data', async () => {
    const js = jetstream(nc);
    r3 = await ensureKv(js, 'r3-bucket', { replicas: 3 });
    assert.equal((await r3.status()).replicas, 3);

    await ensureStreams(jsm, [{ name: 'RAISE', subjects: ['raise.>'], replicas: 1 }]);
    // A new stream takes a moment to get its leader: retry until the publish is acknowledged.
    await waitFor(() => js.publish('raise.a', 'kept', { timeout: 1000 }), { what: 'the R1 stream to take a message', timeoutMs: 10_000, intervalMs: 100 });
    await ensureStreams(jsm, [{ name: 'RAISE', subjects: ['raise.>'], replicas: 3 }]);
    const info = await jsm.streams.info('RAISE');
    assert.equal(info.config.num_replicas, 3);
    assert.equal(info.state.messages, 1);

    const r1 = await ensureKv(js, 'raise-bucket', { replicas: 1 });
    await waitFor(() => r1.put('k', 'kept'), { what: 'the R1 bucket to take a value', timeoutMs: 10_000, intervalMs: 100 });
    const raised = await ensureKv(js, 'raise-bucket', { replicas: 3 });
    assert.equal((await raised.status()).replicas, 3);
    assert.equal((await raised.get('k'))?.string(), 'kept');
  });

  it('provisioning with 3 replicas keeps the inventory bucket at one copy, as the inventory service opens it', async () => {
    await waitFor(() => provisionPlatform(nc, { replicas: 3, storeMiB: 128 }).then(() => true), { what: 'the platform provisioned', timeoutMs: 60_000, intervalMs: 500 });
    const inventory = await jsm.streams.info(`KV_${Buckets.inventory}`);
    assert.equal(inventory.config.num_replicas, 1);
    assert.equal(inventory.config.allow_direct, true, 'R1: direct gets, as the inventory store reads it');
    const runs = await jsm.streams.info(`KV_${Buckets.sagaRuns}`);
    assert.equal(runs.config.num_replicas, 3, 'every other bucket gets the replicas asked for');
    // The service's own open finds the bucket as provisioned: nothing to update (it could not, under authorization).
    const opened = await openBucket(jetstream(nc), Buckets.inventory, { replicas: 1, storeMiB: 128 });
    assert.equal((await opened.status()).streamInfo.config.num_replicas, 1);
  });

  it('an R3 bucket is read from its leader (no direct gets a lagging follower could answer); R1 keeps direct gets', async () => {
    const js = jetstream(nc);
    const r3bucket = await ensureKv(js, 'leader-reads', { replicas: 3 });
    assert.equal((await r3bucket.status()).streamInfo.config.allow_direct, false);
    const r1bucket = await ensureKv(js, 'direct-reads', { replicas: 1 });
    assert.equal((await r1bucket.status()).streamInfo.config.allow_direct, true);
    // Raising a bucket to R3 in place also turns its direct gets off.
    const raised = await ensureKv(js, 'direct-reads', { replicas: 3 });
    assert.equal((await raised.status()).streamInfo.config.allow_direct, false);
  });

  it('concurrent publishes of one Nats-Msg-Id to an R3 stream: both acked, one as the duplicate (the runtime retries "in process")', async () => {
    await jsm.streams.add({ name: 'INPROCESS', subjects: ['inprocess.>'], num_replicas: 3 });
    const pub = new JetStreamPublisher(nc);
    try {
      for (let i = 0; i < 20; i++) {
        const acks = await Promise.all([0, 1, 2].map(() => pub.publish('inprocess.x', String(i), { msgID: `same-${i}` })));
        assert.equal(new Set(acks.map((a) => a.seq)).size, 1, 'one message stored');
        assert.equal(acks.filter((a) => !a.duplicate).length, 1, 'acked once as new, the others as duplicates');
      }
    } finally {
      pub.close();
      await jsm.streams.delete('INPROCESS');
    }
  });

  // Why inventory's store keeps its bucket at R1 (services/inventory/src/index.ts). When this fails, the server is
  // fixed: give the store JETSTREAM_REPLICAS again and turn this around.
  it('nats-server v2.15.2: a pipelined publish expecting a rejected message\'s id wedges an R3 stream (R1 is not affected)', async () => {
    const js = jetstream(nc);
    const wedges = async (replicas: number): Promise<boolean> => {
      const name = `WEDGE${replicas}`;
      await jsm.streams.add({ name, subjects: [`wedge${replicas}.>`], num_replicas: replicas });
      await js.publish(`wedge${replicas}.a`, 'x');
      const first = `first-${replicas}`;
      const rejected = js.publish(`wedge${replicas}.a`, 'x', { msgID: first, expect: { lastSequence: 99 }, timeout: 2000 });
      const chained = js.publish(`wedge${replicas}.b`, 'x', { msgID: `second-${replicas}`, expect: { lastMsgID: first }, timeout: 2000 });
      await assert.rejects(rejected, /wrong last sequence/);
      await assert.rejects(chained, /wrong last msg ID/);
      const later = await js.publish(`wedge${replicas}.a`, 'x', { timeout: 2000 }).then(() => false, (e: Error) => /timeout/i.test(e.message));
      await jsm.streams.delete(name);
      return later;
    };
    assert.equal(await wedges(1), false, 'R1 takes the next publish');
    assert.equal(await wedges(3), true, 'R3 times out on the next publish');
  });

  it('with one server killed, the R3 streams and buckets still take writes (a majority is left)', async () => {
    const victim = servers[2]!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    // A client of the two servers left (the shared one may have been on the victim: its reconnects are not this test's subject).
    const survivors = await waitFor(() => connect({ servers: servers.slice(0, 2).map((s) => s.url), timeout: 1000 }), { what: 'a connection to the servers left', timeoutMs: 20_000, intervalMs: 200 });
    try {
      const js = jetstream(survivors);
      const ack = await waitFor(() => js.publish(`${Streams.orders.subjects[0]!.replace('>', 'o-1')}`, 'after-kill', { timeout: 2000 }), {
        what: 'a publish acknowledged by the two servers left',
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      assert.equal(ack.stream, Streams.orders.name);
      const bucket = await new Kvm(js).open('r3-bucket');
      assert.ok((await waitFor(() => bucket.put('k', 'v'), { what: 'a bucket write', timeoutMs: 30_000, intervalMs: 250 })) > 0);
    } finally {
      await survivors.close();
    }
  });
});

describe('JETSTREAM_REPLICAS above the servers there are', () => {
  it('a single server refuses 3 replicas, and the error says what to change', async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      await assert.rejects(ensureStreams(jsm, [{ name: 'TOO_MANY', subjects: ['too.>'], replicas: 3 }]), (err: unknown) => {
        assert.ok(err instanceof StreamConfigError);
        assert.match(err.message, /could not create stream TOO_MANY \(3 replicas need a JetStream cluster of at least 3 servers: lower JETSTREAM_REPLICAS\)/);
        return true;
      });
      await assert.rejects(ensureKv(jetstream(nc), 'too-many', { replicas: 3 }), /could not create bucket too-many \(3 replicas need/);
    } finally {
      await nc.close();
      await server.stop();
    }
  });
});

describe('the accounts slot on a real server', () => {
  let server: Server;
  let url: string;

  before(async () => {
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    const conf: NatsServerConfOptions = {
      ...(await serverConf('auth', port, 0, [])),
      cluster: undefined,
      accounts: accounts.accounts!,
      systemAccount: accounts.systemAccount,
    };
    server = startServer('auth', conf, { NATS_PASSWORD_ORDERS: 'o-secret', NATS_PASSWORD_SYS: 's-secret' });
    await waitFor(() => connect({ servers: url, user: 'orders', pass: 'o-secret', timeout: 1000 }).then((c) => c.close().then(() => true)), { what: 'the auth server', timeoutMs: 20_000, intervalMs: 200 });
  });
  after(async () => {
    server.child.kill('SIGKILL');
    await server.exited;
  });

  it('a user logs in with the password from its environment variable, and its account has JetStream', async () => {
    const nc = await connect({ servers: url, user: 'orders', pass: 'o-secret' });
    try {
      const jsm = await jetstreamManager(nc);
      await ensureStreams(jsm, [{ name: 'CMDS', subjects: ['cmd.>'] }]);
      assert.ok((await jetstream(nc).publish('cmd.inventory.reserve', 'x')).seq > 0);
    } finally {
      await nc.close();
    }
  });

  it('no credentials or a wrong password is refused', async () => {
    await assert.rejects(connect({ servers: url, reconnect: false }), /Authorization Violation|AUTHORIZATION_VIOLATION/i);
    await assert.rejects(connect({ servers: url, user: 'orders', pass: 'wrong', reconnect: false }), /Authorization Violation|AUTHORIZATION_VIOLATION/i);
  });
});
