import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, it } from 'node:test';
import { EngineRequestError, EngineUnavailableError } from '@sagamesh/participant';
import { REPO_ROOT, waitFor } from '@sagamesh/testing';
import { spec, startParticipants, startRig, waitTerminal, type Rig } from './support/rig.ts';

const RUNS = process.env.CI ? 150 : 300;
const MAIN = join(REPO_ROOT, 'services/orchestrator/src/main.ts');

let rig: Rig;
before(async () => {
  rig = await startRig();
});
after(async () => {
  await rig.close();
});

/** The orchestrator as its own process, so that it can be killed with SIGKILL. */
function spawnEngine(): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: {
      NATS_URL: rig.server.url,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CONSUMER_ACK_WAIT_MS: '2000',
      SWEEP_INTERVAL_MS: '200',
      SWEEP_GRACE_MS: '500',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  return { child, output: () => out };
}

async function waitEngineUp(): Promise<void> {
  await waitFor(
    async () => {
      try {
        await rig.client.get({ runId: 'probe' });
      } catch (err) {
        if (err instanceof EngineRequestError) return true; // not_found: it answers
        if (err instanceof EngineUnavailableError) return false;
        throw err;
      }
      return true;
    },
    { timeoutMs: 30_000, what: 'the orchestrator process to answer' },
  );
}

async function kill9(p: { child: ChildProcess }): Promise<void> {
  const exited = once(p.child, 'exit');
  p.child.kill('SIGKILL');
  await exited;
}

it('kill -9 mid-run: after a restart every run ends, and no step action is commanded twice', { timeout: 180_000 }, async () => {
  // Long step timeouts: nothing may be retried, so a second command for a step can only be a double execution.
  const participants = startParticipants(rig, () => 'succeeded');
  let engine = spawnEngine();
  const processes = [engine];
  try {
    await waitEngineUp();
    const { key, revision } = await rig.client.define({ key: 'k8s.test.crash', spec: spec({ timeout: '60s', deadline: '120s' }) });
    const ids = Array.from({ length: RUNS }, (_, i) => `crash-${i}`);

    // Starts go on through the crash: an unanswered start is retried (start is idempotent by run id).
    const starts = (async () => {
      for (const id of ids) {
        for (;;) {
          try {
            await rig.client.start({ runId: id, definitionKey: key, revision, origin: 'k8s', input: {} });
            break;
          } catch (err) {
            if (!(err instanceof EngineUnavailableError)) throw err;
            await sleep(100);
          }
        }
      }
    })();

    // First kill: once a third of the work is out. Second kill: soon after the restart, mid-recovery.
    await waitFor(() => participants.deliveries.length >= RUNS, { timeoutMs: 60_000, what: 'runs in flight' });
    await kill9(engine);
    const doneAtKill = participants.deliveries.length;
    engine = spawnEngine();
    processes.push(engine);
    await waitEngineUp();
    await waitFor(() => participants.deliveries.length >= doneAtKill + RUNS / 2, { timeoutMs: 60_000, what: 'progress after the restart' });
    await kill9(engine);
    engine = spawnEngine();
    processes.push(engine);
    await starts;

    for (const id of ids) assert.equal((await waitTerminal(rig, id, 60_000)).phase, 'Succeeded', `run ${id}`);

    // Every (run, step) commanded exactly once, with attempt 1: no step ran twice, none was lost.
    const byMsgId = new Map<string, number>();
    for (const d of participants.deliveries) byMsgId.set(d.msgId, (byMsgId.get(d.msgId) ?? 0) + (d.deliveryCount === 1 ? 1 : 0));
    const doubled = [...byMsgId].filter(([, n]) => n > 1);
    assert.deepEqual(doubled, [], 'commands stored twice');
    const crashCmds = participants.deliveries.filter((d) => d.command.runId.startsWith('crash-'));
    assert.ok(crashCmds.every((d) => d.command.action === 'do' && d.command.attempt === 1), 'a retry or compensation happened');
    const expected = ids.flatMap((id) => ['reserve', 'charge', 'ship'].map((s) => `${id}.${s}.1`)).sort();
    assert.deepEqual([...new Set(crashCmds.map((d) => d.msgId))].sort(), expected);
  } catch (err) {
    for (const [i, p] of processes.entries()) console.error(`--- orchestrator process ${i} output ---\n${p.output()}`);
    throw err;
  } finally {
    await participants.stop();
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) await kill9(p);
  }
});
