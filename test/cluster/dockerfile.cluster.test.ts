/**
 * The build context a real BuildKit (the engine `make up OFFLINE=1` started) sends is exactly what .dockerignore
 * describes: the unit tier models it (dockerfile.test.ts), this proves the model on the engine.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, globSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { inContext } from './dockerignore.ts';
import { dockerEnv } from './live.ts';

it('the build context a real BuildKit sends is exactly what .dockerignore describes here', () => {
  const env = dockerEnv();
  const dir = mkdtempSync(path.join(tmpdir(), 'sagamesh-context-'));
  try {
    // A scratch image that holds the context, exported as files: what COPY . would see.
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /ctx/\n');
    const res = spawnSync('docker', ['build', '-q', '-f', path.join(dir, 'Dockerfile'), '-o', `type=local,dest=${path.join(dir, 'out')}`, '.'], {
      cwd: REPO_ROOT, env: { ...env, DOCKER_BUILDKIT: '1' }, encoding: 'utf8', timeout: 120_000,
    });
    assert.equal(res.status, 0, res.stderr);
    const sent = globSync('**/*', { cwd: path.join(dir, 'out', 'ctx') }).filter((f) => statSync(path.join(dir, 'out', 'ctx', f)).isFile()).sort();
    const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.split('\n');
    const expected = files.filter((f) => f && existsSync(path.join(REPO_ROOT, f)) && inContext(f)).sort();
    assert.deepEqual(sent, expected);
    assert.ok(sent.includes('services/gateway/src/main.ts') && sent.includes('libs/runtime/src/index.ts') && !sent.some((f) => f.startsWith('libs/testing/src/')));
    assert.ok(!sent.some((f) => /^(\.dev|\.tools|\.git|node_modules)\/|\/test\//.test(f)), 'no secrets, tools, git or tests');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
