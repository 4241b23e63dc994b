/**
 * `make load` against the real gateway: a real nats-server, the orders service and the gateway started
 * in-process with `start()` (the gateway's upstreams: orders over HTTP, NATS for idempotency keys and
 * faults), then `make load` for a few seconds at a low rate. Once with the right API key (every request
 * a 202), once with a wrong one (every request a 401): the summary reports what it sent and saw.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { GatewayConfigSchema, start as startGateway } from '@sagamesh/gateway';
import { loadConfig, type Started } from '@sagamesh/kit';
import { startNatsServer, type NatsServer } from '@sagamesh/kit/testing';
import { OrdersConfigSchema, start as startOrders } from '@sagamesh/orders';
import { REPO } from './support.ts';

const run = promisify(execFile);
const API_KEY = 'load-test-key-0123456789abcdef';

let nats: NatsServer;
let orders: Started;
let gateway: Started;

async function makeLoad(apiKey: string): Promise<string> {
  const { stdout } = await run('make', ['--no-print-directory', 'load', `URL=http://127.0.0.1:${gateway.port}`, 'RATE=4', 'DURATION=3', `API_KEY=${apiKey}`], { cwd: REPO, timeout: 60_000 });
  return stdout;
}
const row = (out: string, name: string) => Number(new RegExp(`\\| ${name}\\s+\\| (\\d+)`).exec(out)?.[1]);

describe('make load against the real gateway', () => {
  before(async () => {
    nats = await startNatsServer();
    orders = await startOrders(loadConfig(OrdersConfigSchema, { NATS_URL: nats.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }));
    gateway = await startGateway(
      loadConfig(GatewayConfigSchema, { NATS_URL: nats.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', API_KEYS: API_KEY, ORDERS_URL: `http://127.0.0.1:${orders.port}` }),
    );
  });
  after(async () => {
    await gateway?.stop();
    await orders?.stop();
    await nats?.stop();
  });

  it('places orders at the offered rate and reports requests sent, no errors, p50/p99', async (t) => {
    const out = await makeLoad(API_KEY);
    t.diagnostic(out.trim());
    assert.match(out, /rate 2→4→2\/s \(3 steps\)/);
    assert.match(out, /no cluster answers kubectl .*HPA column off/);
    assert.ok((out.match(/^\[\s*\d+s\] offered/gm) ?? []).length >= 2, 'live progress lines');
    const sent = row(out, 'requests sent');
    assert.ok(sent > 0, 'it sent requests');
    assert.equal(row(out, '2xx'), sent, 'every order accepted (202)');
    assert.equal(row(out, 'errors'), 0);
    assert.match(out, /\| p50 latency\s+\| \d+ms/);
    assert.match(out, /\| p99 latency\s+\| \d+ms/);
  });

  it('reports the errors it saw: a wrong API key is a 401 for every request', async (t) => {
    const out = await makeLoad('wrong-key-0123456789abcdef');
    t.diagnostic(out.trim());
    const sent = row(out, 'requests sent');
    assert.ok(sent > 0);
    assert.equal(row(out, '2xx'), 0);
    assert.equal(row(out, 'errors'), sent);
    assert.match(out, new RegExp(`\\| errors\\s+\\| ${sent} \\(401: ${sent}\\)`));
  });
});
