/** The bench drives the `nats` CLI (nats bench) as the admin of a server with authorization: real CLI, real server. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { generateNatsUsers, startNatsServer } from '@sagamesh/testing';
import { natsCliArgs } from '../lib/bench-figures.ts';
import { ensureTools, toolPath } from '../lib/tools.ts';

test('the nats CLI takes the admin\'s credentials even when a generated password begins with "-"', async () => {
  await ensureTools(['nats-server', 'nats']);
  const users = generateNatsUsers();
  users.admin.pass = `-${users.admin.pass}`;
  const server = await startNatsServer({ jetstream: false, auth: users });
  try {
    const rtt = (args: string[]) => spawnSync(toolPath('nats'), [...args, 'rtt'], { encoding: 'utf8', timeout: 20_000 });
    const ok = rtt(natsCliArgs(server.url, users.admin));
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    // The same credentials as separate arguments: the CLI reads the password as a flag.
    const split = rtt(['-s', server.url, '--user', users.admin.user, '--password', users.admin.pass]);
    assert.notEqual(split.status, 0);
    assert.match(split.stderr, /expected argument for flag '--password'/);
  } finally {
    await server.stop();
  }
});
