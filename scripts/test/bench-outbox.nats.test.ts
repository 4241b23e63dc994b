/** The outbox bench runs every mode to the end on a real server and a real 3-server cluster: a batch the server did not store as one fails it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '@sagamesh/testing';

test('bench:outbox prints a row with writes for each storage, replication, mode and client count', () => {
  const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/bench-outbox.ts'), '--seconds', '0.3', '--clients', '1,4'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const rows = run.stdout.split('\n').filter((l) => /^(file|memory) R[13] /.test(l));
  // file R1, memory R1, file R3; three modes; two client counts.
  assert.equal(rows.length, 3 * 3 * 2, run.stdout);
  for (const row of rows) {
    const writesPerSecond = Number(row.trim().split(/\s{2,}/)[3]);
    assert.ok(writesPerSecond > 0, `no writes in: ${row}`);
  }
});
