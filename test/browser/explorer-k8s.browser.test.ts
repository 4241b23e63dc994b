/// <reference lib="dom" />
/**
 * The saga explorer with the operator (make dev K8S=1's set-up: a real kube-apiserver + etcd with the CRDs, the
 * operator as a process): a Saga applied with kubectl appears in the live list with origin k8s and runs to Succeeded.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { freePort, startKubeRig, type KubeRig } from '@sagamesh/testing';
import type { Browser } from 'playwright-core';
import { pipeLines, startPlatform, waitReady, type Platform } from '../../scripts/lib/platform.ts';
import { REPO_ROOT, toolPath } from '../../scripts/lib/tools.ts';
import { launchBrowser, screenshot, signIn } from './rig.ts';

let platform: Platform;
let rig: KubeRig;
let operator: ChildProcess;
let browser: Browser;
const logs: string[] = [];

before(async () => {
  browser = await launchBrowser(); // first: it builds ui/dist, which the gateway serves only if it exists when it starts
  platform = await startPlatform({ ports: 'free', onLog: (s, l) => logs.push(`[${s}] ${l}`) });
  rig = await startKubeRig({ crds: true });
  const port = await freePort();
  operator = spawn(process.execPath, [path.join('operator', 'src', 'main.ts')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '', KUBECONFIG: rig.kubeconfigPath, NATS_URL: platform.natsUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
      ...(platform.natsUsers ? { NATS_USER: platform.natsUsers.operator.user, NATS_PASSWORD: platform.natsUsers.operator.pass } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [operator.stdout, operator.stderr]) pipeLines(s, (l) => logs.push(`[operator] ${l}`));
  await waitReady(port, 'operator', 60_000);
});
after(async () => {
  await browser?.close();
  if (operator && operator.exitCode === null) {
    const exited = new Promise((r) => operator.once('exit', r));
    operator.kill('SIGTERM');
    await exited;
  }
  await rig?.stop();
  await platform?.stop();
});

it('a Saga applied with kubectl appears in the live list with origin k8s, and its saga succeeds', async () => {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  await signIn(page, platform.gatewayUrl, platform.apiKey);
  await page.getByLabel('Origin').selectOption('k8s');
  const apply = spawnSync(toolPath('kubectl'), ['apply', '-f', 'examples/order-fulfillment.yaml', '-f', 'examples/saga-succeeds.yaml'], {
    cwd: REPO_ROOT, env: { ...process.env, KUBECONFIG: rig.kubeconfigPath }, encoding: 'utf8',
  });
  assert.equal(apply.status, 0, `kubectl apply: ${apply.stderr}`);
  const uid = spawnSync(toolPath('kubectl'), ['get', 'saga', 'order-1001', '-o', 'jsonpath={.metadata.uid}'], { env: { ...process.env, KUBECONFIG: rig.kubeconfigPath }, encoding: 'utf8' }).stdout.trim();
  assert.ok(uid, 'the Saga has a uid (its run id)');
  const row = page.locator(`tr[data-run="${uid}"][data-phase="Succeeded"]`);
  await row.waitFor({ timeout: 60_000 });
  assert.equal(await row.locator('td').nth(2).textContent(), 'k8s');
  assert.match((await row.locator('td').nth(3).textContent())!, /^k8s\.default\.order-fulfillment$/);
  await row.getByRole('link').click();
  await page.locator('[data-testid=saga-phase]', { hasText: 'Succeeded' }).waitFor();
  await screenshot(page, '6-k8s-saga');
  await page.close();
});
