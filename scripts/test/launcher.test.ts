/**
 * The workloads' launcher (libs/runtime/src/node-service.sh), which the images and the local platform both run:
 * node with jemalloc preloaded when it is there (and its decay settings), glibc's malloc with a fixed trim threshold
 * otherwise, and the tracing preload imported.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildEntries, buildWorkloads } from '../lib/build.ts';
import { DEBIAN_JEMALLOC, ensureJemalloc } from '../lib/jemalloc.ts';
import { NODE_LAUNCHER } from '../lib/platform.ts';
import { REPO_ROOT } from '../lib/tools.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-launcher-'));
const probe = path.join(dir, 'probe.mjs');

/** What a process the launcher started runs with. */
function launch(env: Record<string, string>): { ld: string | null; conf: string | null; tunables: string | null; jemalloc: boolean; preloaded: boolean } {
  const res = spawnSync('/bin/sh', [NODE_LAUNCHER, probe], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', NODE: process.execPath, ...env } });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout);
}

describe('node-service.sh', () => {
  before(async () => {
    await buildWorkloads(REPO_ROOT, buildEntries([]));
    writeFileSync(probe, `import { readFileSync } from 'node:fs';
const e = process.env;
console.log(JSON.stringify({ ld: e.LD_PRELOAD ?? null, conf: e.MALLOC_CONF ?? null, tunables: e.GLIBC_TUNABLES ?? null,
  jemalloc: readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc'), preloaded: process.execArgv.some((a) => a.endsWith('otel-preload.mjs')) }));`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('preloads jemalloc, found where Debian puts it, with its memory given back within a second', () => {
    assert.ok(ensureJemalloc(() => {}), `jemalloc must be installed for this test: apt-get install -y libjemalloc2 (${DEBIAN_JEMALLOC})`);
    const p = launch({});
    assert.match(p.ld ?? '', /\/libjemalloc\.so\.2$/);
    assert.ok(p.jemalloc, 'jemalloc is mapped into the process');
    assert.equal(p.conf, 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0');
    assert.equal(p.tunables, null);
    assert.ok(p.preloaded, 'the tracing preload is imported');
    // A MALLOC_CONF already set wins; SAGAMESH_JEMALLOC names the library.
    assert.equal(launch({ MALLOC_CONF: 'narenas:1' }).conf, 'narenas:1');
    assert.equal(launch({ SAGAMESH_JEMALLOC: DEBIAN_JEMALLOC }).ld, DEBIAN_JEMALLOC);
  });

  it('without jemalloc (SAGAMESH_JEMALLOC empty) runs on glibc\'s malloc with the trim threshold fixed', () => {
    const p = launch({ SAGAMESH_JEMALLOC: '' });
    assert.equal(p.ld, null);
    assert.equal(p.jemalloc, false);
    assert.equal(p.tunables, 'glibc.malloc.trim_threshold=131072');
    assert.ok(p.preloaded);
  });
});
