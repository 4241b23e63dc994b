/**
 * What `make up` leaves on disk: no image a rebuild replaced, and (on the private dockerd) no more build cache than
 * docker.sh keeps; and make up's check of the free space before it starts. Without both, every make up after a code change left ~3 GB more of untagged images and build cache,
 * until the disk filled and a later make up failed midway with "no space left on device".
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ServiceNames } from '@sagamesh/contracts';
import { dockerEnv } from './live.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);
const WORKLOADS = [...ServiceNames, 'operator'];
const PRIVATE_ENGINE = 'unix:///run/sagamesh-docker/docker.sock';

async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args, { env: dockerEnv(), maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

async function dockerSh(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('bash', ['scripts/cluster/docker.sh', ...args], { cwd: REPO_ROOT, env: dockerEnv() });
  return stdout + stderr;
}

const imageId = (ref: string) => docker('image', 'inspect', '-f', '{{.Id}}', ref);
const exists = (ref: string) => imageId(ref).then(() => true, () => false);

/** docker system df's size of the build cache, in bytes. */
async function buildCacheBytes(): Promise<number> {
  const row = (await docker('system', 'df', '--format', '{{.Type}}\t{{.Size}}')).split('\n').find((l) => l.startsWith('Build Cache'));
  assert.ok(row, 'docker system df lists the build cache');
  const m = /^([\d.]+)\s*([kMG]?B)$/.exec(row.split('\t')[1]!.trim());
  assert.ok(m, `a size: ${row}`);
  return Number(m[1]) * { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2] as 'B' | 'kB' | 'MB' | 'GB'];
}

describe('what make up leaves on disk', () => {
  it('every workload image carries our label, and no image of ours is left untagged', async () => {
    for (const w of WORKLOADS) {
      const label = await docker('image', 'inspect', '-f', '{{index .Config.Labels "io.sagamesh.workload"}}', `sagamesh/${w}:dev`);
      assert.equal(label, w, `sagamesh/${w}:dev carries the label docker.sh trim goes by`);
    }
    for (const label of ['io.sagamesh.workload', 'io.sagamesh.build-hash']) {
      const untagged = await docker('images', '--filter', 'dangling=true', '--filter', `label=${label}`, '--format', '{{.ID}} {{.CreatedSince}} {{.Size}}');
      assert.equal(untagged, '', `untagged images labelled ${label}:\n${untagged}`);
    }
  });

  it('the private dockerd keeps at most 3 GiB of build cache, and docker.sh trim holds it to the bound it is given', async (t) => {
    if (dockerEnv().DOCKER_HOST !== PRIVATE_ENGINE) return t.skip('make up used a Docker engine of its own: its build cache is left alone');
    const afterUp = await buildCacheBytes();
    // docker reads a --keep-storage of "3GB" as 3 GiB, and prints sizes in powers of 1000.
    assert.ok(afterUp <= 3 * 2 ** 30, `after make up: ${(afterUp / 1e9).toFixed(2)} GB`);
    // A tighter bound than the default, so this trim has something to remove (a fresh make up keeps ~1.4 GB).
    const { stdout, stderr } = await run('bash', ['scripts/cluster/docker.sh', 'trim'], {
      cwd: REPO_ROOT,
      env: { ...dockerEnv(), SAGAMESH_BUILD_CACHE_KEEP: '500MB' },
    });
    assert.match(stdout + stderr, /build cache: \S+ reclaimed, at most 500MB kept/);
    const trimmed = await buildCacheBytes();
    assert.ok(trimmed <= 500 * 2 ** 20, `after the trim: ${(trimmed / 1e6).toFixed(0)} MB`);
  });

  it('make up refuses to start short of disk space, saying how much it needs, how much is free and how to free some', async () => {
    // -o: npm ci and make tools count as done. The check comes before anything changes (right after the engine answers).
    const args = ['--no-print-directory', '-o', 'node_modules/.installed', '-o', 'deps', '-o', 'tools', 'up', 'OFFLINE=1', 'DISK_NEEDED_GB=1000000'];
    const failed = await run('make', args, { cwd: REPO_ROOT, env: { ...process.env, TERM: 'dumb' } }).then(
      () => assert.fail('make up started'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(failed.code, 2, 'make reports the failed recipe');
    assert.match(failed.stderr, /make up needs about 1000000 GB free where Docker keeps its data \(\/\S+\); \d+ GB are free\./);
    assert.match(failed.stderr, /Free some: make down, then docker image prune .* or DISK_NEEDED_GB=0 make up to try anyway/);
    assert.doesNotMatch(failed.stdout, /\(3\/10\)/, 'stopped before the next step');
  });

  describe('docker.sh trim', () => {
    const repo = `sagamesh-test/trim-${process.pid}`;
    const context = mkdtempSync(path.join(tmpdir(), 'trim-'));
    after(async () => {
      rmSync(context, { recursive: true, force: true });
      const left = await docker('images', '--filter', 'label=sagamesh.test.trim', '--format', '{{.ID}}');
      if (left) await docker('rmi', '-f', ...new Set(left.split('\n')));
    });

    /** An image on the offline base with labels only (no layer of its own: built in a moment), tagged ref. */
    async function build(ref: string, labels: string[]): Promise<string> {
      const lines = labels.map((l) => `LABEL ${l}`).join('\n');
      writeFileSync(path.join(context, 'Dockerfile'), `FROM sagamesh-build/debian:bookworm\nLABEL sagamesh.test.trim=${process.pid}\n${lines}\n`);
      await docker('build', '--pull=false', '-q', '-t', ref, context);
      return imageId(ref);
    }

    it('removes the images of ours a rebuild untagged, and nobody else\'s, nor a tagged one', async () => {
      const ours = await build(`${repo}:ours`, ['io.sagamesh.workload=test', 'n=1']);
      const current = await build(`${repo}:ours`, ['io.sagamesh.workload=test', 'n=2']);
      const addon = await build(`${repo}:addon`, ['io.sagamesh.build-hash=1']);
      await build(`${repo}:addon`, ['io.sagamesh.build-hash=2']);
      const foreign = await build(`${repo}:foreign`, ['n=1']);
      await build(`${repo}:foreign`, ['n=2']);
      const kept = await build(`${repo}:kept`, ['io.sagamesh.workload=test', 'n=3']);
      await docker('tag', kept, `${repo}:kept-too`);
      await build(`${repo}:kept`, ['io.sagamesh.workload=test', 'n=4']);
      for (const id of [ours, addon, foreign]) assert.equal(await docker('image', 'inspect', '-f', '{{len .RepoTags}}', id), '0', 'untagged by the rebuild');

      const out = await dockerSh('trim');
      assert.match(out, /untagged images labelled io\.sagamesh\.workload: 1 removed, \S+ reclaimed/);
    assert.match(out, /untagged images labelled io\.sagamesh\.build-hash: 1 removed, \S+ reclaimed/);
      assert.equal(await exists(ours), false, 'a workload image a rebuild untagged is removed');
      assert.equal(await exists(addon), false, 'an add-on image a rebuild untagged is removed');
      assert.equal(await exists(foreign), true, 'an untagged image without our label is not ours: it stays');
      assert.equal(await imageId(`${repo}:ours`), current, 'the current image stays');
      assert.equal(await imageId(`${repo}:kept-too`), kept, 'an image another tag still names stays');
    });
  });
});
