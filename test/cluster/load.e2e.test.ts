/**
 * `make load` against `make dev`: the whole platform as processes on a real nats-server (the same
 * supervisor `make dev` uses, on free ports), then `make load` for a few seconds at a low rate. Once
 * with the right API key (every request a 202, every order created and ended), once with a wrong one
 * (every request a 401): the summary reports what it sent and saw, and the books agree.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Audit } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/testing';
import { startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);

let platform: Platform;

async function makeLoad(apiKey: string): Promise<string> {
  // A context no kubeconfig has: the HPA column stays off even on a machine where `make up` left a cluster running.
  const { stdout } = await run('make', ['--no-print-directory', 'load', `URL=${platform.gatewayUrl}`, 'RATE=4', 'DURATION=3', `API_KEY=${apiKey}`, 'ARGS=--kube-context sagamesh-test-no-cluster'], { cwd: REPO_ROOT, timeout: 60_000 });
  return stdout;
}
const row = (out: string, name: string) => Number(new RegExp(`\\| ${name.replace(/[()]/g, '\\$&')}\\s+\\| (\\d+)`).exec(out)?.[1]);
async function audit(): Promise<Audit> {
  const res = await fetch(`${platform.gatewayUrl}/admin/audit`, { headers: { authorization: `Bearer ${platform.apiKey}` } });
  return (await res.json()) as Audit;
}
const ordersIn = (a: Audit) => a.orders.confirmed.count + a.orders.cancelled.count + a.orders.pending.count + a.orders.failed.count;

describe('make load against make dev (the whole platform)', () => {
  before(async () => {
    platform = await startPlatform({ ports: 'free' });
  });
  after(async () => {
    await platform?.stop();
  });

  it('sends exactly its schedule, every request creates one order, all end; the summary says so', async (t) => {
    const before = ordersIn(await audit());
    const out = await makeLoad(platform.apiKey);
    t.diagnostic(out.trim());
    assert.match(out, /rate 4→4→4\/s \(3 steps, 12 requests\)/);
    assert.match(out, /no cluster answers kubectl .*HPA column off/);
    assert.ok((out.match(/^\[\s*\d+s\] offered/gm) ?? []).length >= 2, 'live progress lines');
    assert.equal(row(out, 'requests sent'), 12);
    assert.equal(row(out, 'accepted (202)'), 12, 'every order accepted');
    assert.equal(row(out, 'errors'), 0);
    assert.equal(row(out, 'orders pending'), 0, 'every order ended (make load waits for them)');
    assert.match(out, /\| p50 latency\s+\| \d+ms/);
    assert.match(out, /\| p99 latency\s+\| \d+ms/);
    assert.match(out, /\| peak replicas\s+\| no HPA seen/);
    // The books count what the summary counts: no request went unreported.
    await waitFor(async () => ordersIn(await audit()) - before === 12, { what: 'orders created = requests accepted (12)', timeoutMs: 10_000 });
  });

  it('reports the errors it saw: a wrong API key is a 401 for every request', async (t) => {
    const out = await makeLoad('wrong-key-0123456789abcdef');
    t.diagnostic(out.trim());
    assert.equal(row(out, 'requests sent'), 12);
    assert.equal(row(out, 'accepted (202)'), 0);
    assert.match(out, /\| errors\s+\| 12 \(HTTP 401: 12\)/);
    assert.match(out, /\| orders pending\s+\| unknown: GET \/admin\/audit answered 401/);
  });
});
