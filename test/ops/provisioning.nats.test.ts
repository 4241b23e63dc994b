/**
 * Provisioning under authorization, as the cluster runs it: the services start beside the `nats-provision` Job, so a
 * service that finds its streams missing waits for the admin instead of exiting (which would crash-loop the pod), and
 * the Job's entry point (libs/runtime/src/provision-main.ts) provisions everything as the admin and exits 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inboxPrefixOf, Streams } from '@sagamesh/contracts';
import { createLogger, declarePlatformStreams, provisionPlatform, whileJetStreamForms } from '@sagamesh/runtime';
import { generateNatsUsers, type NatsServer, startNatsServer } from '@sagamesh/testing';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const users = generateNatsUsers();
let server: NatsServer;
const open: NatsConnection[] = [];

before(async () => {
  server = await startNatsServer({ auth: users });
});
after(async () => {
  await Promise.all(open.map((nc) => nc.close()));
  await server?.stop();
});

const streamNames = async (nc: NatsConnection) => {
  const names: string[] = [];
  for await (const s of (await jetstreamManager(nc)).streams.list()) names.push(s.config.name);
  return names.sort();
};

describe('provisioning under authorization', () => {
  it('a service that finds its streams missing waits for the admin, then goes on', async () => {
    const payments = await connect({ servers: server.url, ...users.payments, inboxPrefix: inboxPrefixOf('payments'), reconnect: false });
    open.push(payments);
    const admin = await connect({ servers: server.url, ...users.admin });
    open.push(admin);
    assert.deepEqual(await streamNames(admin), [], 'a fresh server: nothing provisioned');
    let settled = false;
    const waiting = whileJetStreamForms(async () => declarePlatformStreams(await jetstreamManager(payments)), { log: createLogger('payments', 'silent'), what: 'declare the platform streams' })
      .finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(settled, false, 'the service is still waiting (it neither gave up nor created anything)');
    assert.deepEqual(await streamNames(admin), [], 'a service identity created no stream');
    await provisionPlatform(admin);
    await waiting;
    assert.ok((await streamNames(admin)).includes(Streams.orders.name));
  });

  it("the Job's entry point provisions as the admin and exits 0; a wrong password exits 1 with the reason", () => {
    const entry = path.join(REPO_ROOT, 'libs/runtime/src/provision-main.ts');
    const env = { PATH: process.env.PATH ?? '', NATS_URL: server.url, NATS_USER: 'admin', LOG_LEVEL: 'info' };
    const ok = spawnSync(process.execPath, [entry], { env: { ...env, NATS_PASSWORD: users.admin.pass }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /platform streams and buckets provisioned/);
    assert.ok(!ok.stdout.includes(users.admin.pass), 'the password is not logged');
    const bad = spawnSync(process.execPath, [entry], { env: { ...env, NATS_PASSWORD: 'not-the-password' }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /"msg":"provisioning failed"/);
    assert.match(bad.stdout, /Authorization Violation/);
    const badConfig = spawnSync(process.execPath, [entry], { env: { ...env, JETSTREAM_REPLICAS: 'three' }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(badConfig.status, 1);
    assert.match(badConfig.stdout + badConfig.stderr, /JETSTREAM_REPLICAS must be an integer/);
  });
});
