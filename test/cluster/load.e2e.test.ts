/**
 * `make load` against `make dev`: the whole platform as processes on a real nats-server (the same
 * supervisor `make dev` uses, on free ports), then `make load` for a few seconds at a low rate. Once
 * with the right API key (every request a 202), once with a wrong one (every request a 401): the
 * summary reports what it sent and saw.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);

let platform: Platform;

async function makeLoad(apiKey: string): Promise<string> {
  const { stdout } = await run('make', ['--no-print-directory', 'load', `URL=${platform.gatewayUrl}`, 'RATE=4', 'DURATION=3', `API_KEY=${apiKey}`], { cwd: REPO_ROOT, timeout: 60_000 });
  return stdout;
}
const row = (out: string, name: string) => Number(new RegExp(`\\| ${name}\\s+\\| (\\d+)`).exec(out)?.[1]);

describe('make load against make dev (the whole platform)', () => {
  before(async () => {
    platform = await startPlatform({ ports: 'free' });
  });
  after(async () => {
    await platform?.stop();
  });

  it('places orders at the offered rate and reports requests sent, no errors, p50/p99', async (t) => {
    const out = await makeLoad(platform.apiKey);
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
