import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ServiceNames } from '@sagamesh/contracts';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** A .dockerignore pattern as a regex: Go filepath.Match (`*`, `?` within a segment; dot files included) plus `**`. */
function patternRegex(pattern: string): RegExp {
  const body = pattern.replace(/\/$/, '').split(/(\*\*|\*|\?)/).map((t) => (t === '**' ? '.*' : t === '*' ? '[^/]*' : t === '?' ? '[^/]' : t.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

/** Whether the build context keeps a path, by .dockerignore's rules (the last matching pattern wins). */
function inContext(rel: string): boolean {
  let kept = true;
  for (const raw of ignore) {
    const negate = raw.startsWith('!');
    const pattern = negate ? raw.slice(1) : raw;
    // A pattern also matches everything below a matched directory.
    const parts = rel.split('/');
    const re = patternRegex(pattern);
    const matched = parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
    if (matched) kept = negate;
  }
  return kept;
}

const stages = dockerfile.getFROMs().map((f) => f.getBuildStage());
const copies = dockerfile.getCOPYs();

describe('Dockerfile', () => {
  it('passes dockerfile-utils validation (no errors or warnings)', () => {
    assert.deepEqual(validate(text), []);
    assert.ok(validate('FROM node:24\nCOPY\n').length > 0, 'the validator does report a broken Dockerfile');
  });

  it('is multi-stage from one pinned Node 24 slim image — the Node version the repository pins', () => {
    assert.deepEqual(stages, ['deps', 'sources', 'runtime']);
    const arg = dockerfile.getInitialARGs().find((a) => a.getProperty()?.getName() === 'NODE_IMAGE');
    const image = arg?.getProperty()?.getValue();
    const nodeVersion = JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', 'node', 'package.json'), 'utf8')).version;
    assert.equal(image, `node:${nodeVersion}-bookworm-slim`);
    assert.match(nodeVersion, /^24\./);
    for (const from of dockerfile.getFROMs()) assert.equal(from.getImage(), '${NODE_IMAGE}');
  });

  it('every COPY source from the build context exists in the workspace and is kept by .dockerignore', () => {
    const fromContext = copies.filter((c) => !c.getFromFlag());
    assert.ok(fromContext.length >= 10);
    for (const c of fromContext) {
      const args = c.getArguments().map((a) => a.getValue());
      for (const src of args.slice(0, -1)) {
        const rel = src.replace(/\/$/, '');
        assert.ok(existsSync(path.join(REPO_ROOT, rel)), `COPY ${src}: missing in the workspace`);
        if (statSync(path.join(REPO_ROOT, rel)).isFile()) assert.ok(inContext(rel), `COPY ${src}: excluded by .dockerignore`);
      }
    }
    // What the sources stage copies for every workload is in the context; what must never leak is not.
    for (const f of ['services/contracts/src/index.ts', 'services/kit/src/index.ts', 'operator/src/main.ts', ...ServiceNames.map((s) => `services/${s}/src/main.ts`)]) {
      assert.ok(inContext(f), `${f} reaches the build context`);
    }
    for (const f of ['.dev/cluster/api-key', '.git/config', 'node_modules/x/index.js', 'services/gateway/test/a.test.ts', 'cdk8s/src/main.ts', 'services/kit/src/testing/kube-rig.ts', '.tools/bin/kubectl']) {
      assert.ok(!inContext(f), `${f} must not reach the build context`);
    }
  });

  it('installs dependencies from the lockfile with npm ci, production only, for the one workspace', () => {
    const ci = dockerfile.getInstructions().find((i) => i.getKeyword() === 'RUN' && /npm ci/.test(i.getArgumentsContent() ?? ''));
    assert.ok(ci);
    assert.match(ci.getArgumentsContent()!, /npm ci --omit=dev --workspace "\$ws"/);
    // Every package.json the lockfile's workspaces need is copied before it (npm ci checks them all).
    const rootPkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const copied = new Set(copies.flatMap((c) => c.getArguments().map((a) => a.getValue())));
    for (const pattern of rootPkg.workspaces as string[]) {
      const dirs = pattern.endsWith('/*') ? ServiceNames.map((s) => `${pattern.slice(0, -2)}/${s}`).concat(['services/contracts', 'services/kit']) : [pattern];
      for (const d of dirs) assert.ok(copied.has(`${d}/package.json`), `COPY ${d}/package.json before npm ci`);
    }
  });

  it('builds every workload: a src/main.ts exists where the SERVICE arg points', () => {
    for (const s of [...ServiceNames, 'operator']) {
      const ws = s === 'operator' ? 'operator' : `services/${s}`;
      assert.ok(existsSync(path.join(REPO_ROOT, ws, 'src', 'main.ts')), `${ws}/src/main.ts`);
    }
  });

  it('the final stage runs as a numeric non-root user, by Node type stripping with the OTel preload', () => {
    const runtime = dockerfile.getInstructions().slice(dockerfile.getInstructions().findIndex((i) => i.getKeyword() === 'FROM' && /AS runtime/.test(i.getArgumentsContent() ?? '')));
    const users = runtime.filter((i) => i.getKeyword() === 'USER');
    assert.equal(users.length, 1);
    const [uid, gid] = users[0]!.getArgumentsContent()!.split(':').map(Number);
    assert.ok(Number.isInteger(uid) && uid! > 0 && Number.isInteger(gid) && gid! > 0, 'numeric, non-zero UID:GID');
    const cmd = runtime.find((i) => i.getKeyword() === 'CMD');
    assert.deepEqual(JSON.parse(cmd!.getArgumentsContent()!), ['node', '--import', '@sagamesh/kit/otel-preload', '/app/main.ts']);
    assert.ok(!runtime.some((i) => i.getKeyword() === 'RUN'), 'nothing runs as root in the final stage');
    // The pod securityContext's runAsUser matches the image's user.
    assert.equal(uid, 1000);
  });
});
