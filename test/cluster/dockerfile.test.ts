import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ServiceNames } from '@sagamesh/contracts';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { PROVISION_ENTRY } from '../../cdk8s/src/provision.ts';
import { buildEntries, bundleOf, WORKLOADS } from '../../scripts/lib/build.ts';
import { NODE_LAUNCHER } from '../../scripts/lib/platform.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { ignore, inContext } from './dockerignore.ts';

const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);

const stages = dockerfile.getFROMs().map((f) => f.getBuildStage());
const copies = dockerfile.getCOPYs();
const instructions = dockerfile.getInstructions();
/** The libraries every image carries (the test rigs in libs/testing never do). */
const RUNTIME_LIBS = ['libs/contracts', 'libs/runtime', 'libs/participant'];
/** The instructions of one stage. */
function stage(name: string) {
  const start = instructions.findIndex((i) => i.getKeyword() === 'FROM' && new RegExp(`AS ${name}$`).test(i.getArgumentsContent() ?? ''));
  assert.ok(start >= 0, `stage ${name}`);
  const next = instructions.findIndex((i, n) => n > start && i.getKeyword() === 'FROM');
  return instructions.slice(start, next < 0 ? undefined : next);
}

describe('Dockerfile', () => {
  it('passes dockerfile-utils validation (no errors or warnings)', () => {
    assert.deepEqual(validate(text), []);
    assert.ok(validate('FROM node:24\nCOPY\n').length > 0, 'the validator does report a broken Dockerfile');
  });

  it('builds offline with the engine\'s own frontend: no `# syntax=` directive (it would pull an image)', () => {
    assert.doesNotMatch(text, /^#\s*syntax\s*=/im);
    assert.equal(dockerfile.getDirectives().length, 0);
  });

  it('is multi-stage from one Node 24 image, a build arg: the pinned slim image online, the local base offline', () => {
    assert.deepEqual(stages, ['deps', 'sources', 'init', 'runtime']);
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
    for (const f of ['libs/contracts/src/index.ts', 'libs/runtime/src/index.ts', 'libs/participant/src/index.ts', 'operator/src/main.ts', ...ServiceNames.map((s) => `services/${s}/src/main.ts`)]) {
      assert.ok(inContext(f), `${f} reaches the build context`);
    }
    for (const f of ['.dev/cluster/api-key', '.git/config', 'node_modules/x/index.js', 'services/gateway/test/a.test.ts', 'cdk8s/src/main.ts', 'libs/testing/src/kube-rig.ts', 'libs/runtime/test/http.test.ts', '.tools/bin/kubectl']) {
      assert.ok(!inContext(f), `${f} must not reach the build context`);
    }
  });

  it('.dockerignore lets nothing back in through a wildcard (Docker 20.10\'s BuildKit then lets nothing in at all)', () => {
    const negations = ignore.filter((p) => p.startsWith('!'));
    assert.ok(negations.length > 0);
    for (const p of negations) assert.doesNotMatch(p, /[*?[]/, p);
    // Each workload's sources and manifest are let in by name.
    for (const ws of [...ServiceNames.map((s) => `services/${s}`), ...RUNTIME_LIBS, 'operator']) {
      assert.ok(ignore.includes(`!${ws}/package.json`) && ignore.includes(`!${ws}/src`), ws);
    }
  });

  it('installs dependencies from the lockfile with npm ci, production only, for the one workspace', () => {
    const ci = dockerfile.getInstructions().find((i) => i.getKeyword() === 'RUN' && /npm ci/.test(i.getArgumentsContent() ?? ''));
    assert.ok(ci);
    assert.match(ci.getArgumentsContent()!, /npm ci --omit=dev --workspace "\$ws"/);
    // Through a TLS-intercepting proxy npm needs its CA: an optional build secret, trusted only while npm ci runs.
    assert.match(ci.getTextContent(), /--mount=type=secret,id=npm_ca(\s|$)/);
    assert.doesNotMatch(ci.getTextContent(), /required/);
    assert.match(ci.getArgumentsContent()!, /if \[ -s \/run\/secrets\/npm_ca \]; then export NODE_EXTRA_CA_CERTS=\/run\/secrets\/npm_ca; fi;\s+npm ci/);
    const elsewhere = instructions.filter((i) => i !== ci && /npm_ca|NODE_EXTRA_CA_CERTS|ca-certificates\.crt/.test(i.getTextContent()));
    assert.deepEqual(elsewhere.map((i) => i.getKeyword()), [], 'the CA is never copied, set in ENV or used elsewhere');
    // Every package.json the lockfile's workspaces need is copied before it (npm ci checks them all).
    const rootPkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const copied = new Set(copies.flatMap((c) => c.getArguments().map((a) => a.getValue())));
    for (const pattern of rootPkg.workspaces as string[]) {
      const dirs = pattern.endsWith('/*') ? readdirSync(path.join(REPO_ROOT, pattern.slice(0, -2))).map((d) => `${pattern.slice(0, -2)}/${d}`).filter((d) => existsSync(path.join(REPO_ROOT, d, 'package.json'))) : [pattern];
      for (const d of dirs) assert.ok(copied.has(`${d}/package.json`), `COPY ${d}/package.json before npm ci`);
    }
  });

  it('builds every workload: a src/main.ts exists where the SERVICE arg points, bundled by scripts/lib/build.ts', () => {
    for (const s of [...ServiceNames, 'operator']) {
      const ws = s === 'operator' ? 'operator' : `services/${s}`;
      assert.ok(existsSync(path.join(REPO_ROOT, ws, 'src', 'main.ts')), `${ws}/src/main.ts`);
      assert.ok((WORKLOADS as readonly string[]).includes(ws), `${ws} is a workload the build knows`);
    }
    const build = stage('sources').find((i) => i.getKeyword() === 'RUN')!.getArgumentsContent()!;
    assert.match(build, /node scripts\/lib\/build\.ts "\$ws"/);
    // The image gets the bundle and the preload (no source), the entry linked to the bundle the CMD starts.
    const preloadDir = path.dirname(buildEntries([])[0]!.output);
    assert.match(build, new RegExp(`cp -a --parents "\\$ws/dist" ${preloadDir} ${path.relative(REPO_ROOT, NODE_LAUNCHER)} /out/`));
    assert.ok(build.includes(`ln -s "/app/${bundleOf('$ws')}" /out/main.mjs`), build);
    // The provisioning Job (cdk8s) runs a bundle from that directory, in the orchestrator's image.
    assert.equal(PROVISION_ENTRY, `/app/${buildEntries([]).find((e) => e.source.endsWith('/provision-main.ts'))!.output}`);
    assert.equal(path.dirname(PROVISION_ENTRY), `/app/${preloadDir}`);
  });

  it('runs tini as PID 1 (crash-after-commit\'s SIGKILL ends the container), installed from Debian only where the base lacks it', () => {
    const runtime = stage('runtime');
    const entrypoint = runtime.filter((i) => i.getKeyword() === 'ENTRYPOINT');
    assert.equal(entrypoint.length, 1);
    assert.deepEqual(JSON.parse(entrypoint[0]!.getArgumentsContent()!), ['tini', '--']);
    const tini = copies.find((c) => runtime.includes(c) && /tini/.test(c.getArgumentsContent() ?? ''));
    assert.equal(tini?.getFromFlag()?.getValue(), 'init');
    assert.equal(tini?.getArgumentsContent(), '/out/tini /usr/bin/tini');
    const install = stage('init').filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
    assert.equal(install.length, 1);
    assert.match(install[0]!, /if ! command -v tini >\/dev\/null \|\| ! dpkg -s libjemalloc2 >\/dev\/null 2>&1; then\s+apt-get update && apt-get install -y --no-install-recommends tini libjemalloc2/);
    assert.match(install[0]!, /install -D -m 0755 "\$\(command -v tini\)" \/out\/tini/);
  });

  it('carries jemalloc where the launcher looks for it first (it preloads it: idle memory goes back to the system)', () => {
    const runtime = stage('runtime');
    const lib = copies.find((c) => runtime.includes(c) && /jemalloc/.test(c.getArgumentsContent() ?? ''));
    assert.equal(lib?.getFromFlag()?.getValue(), 'init');
    const [, dest] = lib!.getArgumentsContent()!.split(/\s+/);
    const launcher = readFileSync(NODE_LAUNCHER, 'utf8');
    const candidates = /for lib in ([^;]+);/.exec(launcher)?.[1]?.split(/\s+/) ?? [];
    assert.equal(candidates[0], dest, `the launcher looks in ${candidates.join(', ')}`);
    assert.match(stage('init').find((i) => i.getKeyword() === 'RUN')!.getArgumentsContent()!, /install -D -m 0644 "\$\(dpkg -L libjemalloc2 \| grep '\/libjemalloc\\\.so\\\.2\$'\)" \/out\/libjemalloc\.so\.2/);
  });

  it('the final stage runs as a numeric non-root user, the workload\'s bundle through the launcher scripts/lib/platform.ts uses', () => {
    const runtime = stage('runtime');
    const users = runtime.filter((i) => i.getKeyword() === 'USER');
    assert.equal(users.length, 1);
    const [uid, gid] = users[0]!.getArgumentsContent()!.split(':').map(Number);
    assert.ok(Number.isInteger(uid) && uid! > 0 && Number.isInteger(gid) && gid! > 0, 'numeric, non-zero UID:GID');
    const cmd = runtime.find((i) => i.getKeyword() === 'CMD');
    // The launcher holds the node flags and environment (the OTel preload, the memory settings): one script for the image and the local platform.
    assert.deepEqual(JSON.parse(cmd!.getArgumentsContent()!), ['sh', `/app/${path.relative(REPO_ROOT, NODE_LAUNCHER)}`, '/app/main.mjs']);
    assert.ok(inContext(path.relative(REPO_ROOT, NODE_LAUNCHER)), 'the launcher is in the build context');
    assert.ok(RUNTIME_LIBS.some((l) => path.relative(REPO_ROOT, NODE_LAUNCHER).startsWith(`${l}/`)), 'the launcher is in a library every image carries');
    // The preload the launcher imports is the bundle the build writes beside the launcher's src/ (no TypeScript at run time).
    const launcher = readFileSync(NODE_LAUNCHER, 'utf8');
    assert.match(launcher, /^exec "\$\{NODE:-node\}" .*--import "\$preload" "\$@"$/m);
    const preload = buildEntries([])[0]!.output;
    assert.equal(path.relative(path.dirname(path.relative(REPO_ROOT, NODE_LAUNCHER)), preload), `../dist/${path.basename(preload)}`);
    assert.ok(launcher.includes(`preload="$(cd "$(dirname "$0")/../dist" && pwd)/${path.basename(preload)}" || exit 1`), launcher);
    assert.ok(!runtime.some((i) => i.getKeyword() === 'RUN'), 'nothing runs as root in the final stage');
    // The pod securityContext's runAsUser matches the image's user.
    assert.equal(uid, 1000);
  });
});
