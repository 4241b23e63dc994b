import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { buildEntries, buildWorkloads, bundleOf } from '../lib/build.ts';
import { REPO_ROOT } from '../lib/tools.ts';

describe('buildWorkloads: each workload as one plain-JavaScript module', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sagamesh-build-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('bundles the workspace code (relative and @sagamesh/* imports, TypeScript) and leaves every other package an import', async () => {
    // A miniature repository: a workload importing a workspace library (through node_modules, as npm links it) and packages.
    mkdirSync(path.join(root, 'services/demo/src'), { recursive: true });
    mkdirSync(path.join(root, 'libs/lib/src'), { recursive: true });
    mkdirSync(path.join(root, 'node_modules/@sagamesh'), { recursive: true });
    writeFileSync(path.join(root, 'libs/lib/package.json'), JSON.stringify({ name: '@sagamesh/lib', type: 'module', exports: { '.': './src/index.ts' } }));
    writeFileSync(path.join(root, 'libs/lib/src/index.ts'), "import pino from 'pino';\nexport const greet = (who: string): string => `hello ${who}`;\nexport const log = pino;\n");
    symlinkSync('../../libs/lib', path.join(root, 'node_modules/@sagamesh/lib'));
    writeFileSync(path.join(root, 'services/demo/src/util.ts'), 'export const two: number = 2;\n');
    writeFileSync(path.join(root, 'services/demo/src/main.ts'), "import express from 'express';\nimport { readFileSync } from 'node:fs';\nimport { greet } from '@sagamesh/lib';\nimport { two } from './util.ts';\nconst n: number = 1;\nconsole.log(greet('x'), n + two, typeof express, typeof readFileSync);\n");
    await buildWorkloads(root, [{ source: 'services/demo/src/main.ts', output: bundleOf('services/demo') }]);
    const out = readFileSync(path.join(root, bundleOf('services/demo')), 'utf8');
    assert.match(out, /from "express"/);
    assert.match(out, /from "pino"/);
    assert.match(out, /from "node:fs"/);
    assert.doesNotMatch(out, /from "@sagamesh/, 'the library is inside the bundle');
    assert.match(out, /\/\/ libs\/lib\/src\/index\.ts/);
    assert.doesNotMatch(out, /: number/, 'types are gone');
    assert.match(out, /hello \$\{who\}/);
    // A source map beside it leads back to the sources (the bench reads its CPU profiles through it); node never loads it.
    const map = JSON.parse(readFileSync(path.join(root, `${bundleOf('services/demo')}.map`), 'utf8')) as { sources: string[] };
    assert.deepEqual([...map.sources].sort(), ['../../../libs/lib/src/index.ts', '../src/main.ts', '../src/util.ts']);
    assert.doesNotMatch(out, /sourceMappingURL/);
  });

  it('builds every workload of the repository and its preload; a bundle starts under node without its type stripper', async () => {
    await buildWorkloads(REPO_ROOT);
    for (const e of buildEntries()) assert.ok(readFileSync(path.join(REPO_ROOT, e.output), 'utf8').length > 1000, e.output);
    // Type stripping off: a bundle that still held TypeScript (or imported a .ts file) fails to load; a bad config is a clean exit 1.
    const res = spawnSync(process.execPath, ['--no-experimental-strip-types', bundleOf('services/notifications')], {
      cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', NATS_URL: 'not a url at all', PORT: 'x' }, timeout: 30_000,
    });
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stdout + res.stderr, /PORT/);
    assert.doesNotMatch(res.stderr, /ERR_UNKNOWN_FILE_EXTENSION|ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING|SyntaxError/);
  });

  it('the command line refuses a name that is not a workload, saying which are', () => {
    const res = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/lib/build.ts'), 'services/nope'], { encoding: 'utf8' });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /not a workload: services\/nope \(the workloads: services\/gateway, .*operator\)/);
  });
});
