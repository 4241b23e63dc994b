/**
 * The design benches run every mode to the end on a real server and a real 3-server cluster: a batch the server
 * did not store as one, or a step whose answer never came, fails them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '@sagamesh/testing';

/** Runs a bench briefly at 1 and 4 clients; returns the rate column of its rows. */
function rates(script: string, rowStart: RegExp): number[] {
  const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', script), '--seconds', '0.3', '--clients', '1,4'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const rows = run.stdout.split('\n').filter((l) => rowStart.test(l));
  return rows.map((row) => {
    const rate = Number(row.trim().split(/\s{2,}/)[3]);
    assert.ok(rate > 0, `nothing done in: ${row}`);
    return rate;
  });
}

test('bench:outbox prints a row with writes for each storage, replication, mode and client count', () => {
  // file R1, memory R1, file R3; three modes; two client counts.
  assert.equal(rates('bench-outbox.ts', /^(file|memory) R[13] /).length, 3 * 3 * 2);
});

test('bench:step prints a row with steps for each replication, mode and client count', () => {
  // file R1, file R3; two modes; two client counts.
  assert.equal(rates('bench-step.ts', /^file R[13] /).length, 2 * 2 * 2);
});
