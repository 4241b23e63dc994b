/**
 * The informer on a real API server: a watch whose resourceVersion expired (410 Gone) relists, and
 * reports what changed while it was away. The API server runs without its watch cache, so a watch
 * reads etcd; etcd is compacted while the operator's connection is cut (a TCP proxy in between), so
 * the watch resumes from a resourceVersion that no longer exists.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { SagaObject } from '@sagamesh/contracts';
import { createLogger } from '@sagamesh/runtime';
import { waitFor } from '@sagamesh/testing';
import { ResilientInformer } from '../src/informer.ts';
import { KubeApi } from '../src/kube.ts';
import { NS, create, sagaObject, startPlatform, type Platform } from './harness.ts';

/** A TCP proxy that can cut every connection and refuse new ones, then let them through again. */
async function startProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let p: Platform;
before(async () => {
  p = await startPlatform({ engine: false, rig: { watchCache: false } });
});
after(async () => p?.stop());

describe('ResilientInformer', () => {
  it('relists after its watch expired (410 Gone) and reports the deletions and additions it missed', async () => {
    const proxy = await startProxy(Number(new URL(p.rig.server).port));
    const kc = new KubeConfig();
    kc.loadFromString(readFileSync(p.rig.kubeconfigPath, 'utf8').replace(p.rig.server, `https://127.0.0.1:${proxy.port}`));
    const kube = new KubeApi(kc, 'test');
    const seen: string[] = [];
    const informer = new ResilientInformer<SagaObject>({
      kubeConfig: kc,
      path: KubeApi.watchPath('Saga'),
      list: () => kube.list<SagaObject>('Saga'),
      onEvent: (event, s) => seen.push(`${event} ${s.metadata.name}`),
      log: createLogger('test', 'silent'),
      restartDelayMs: 100,
      maxRestartDelayMs: 400,
    });
    try {
      await create(p, sagaObject('kept'));
      await create(p, sagaObject('removed'));
      informer.start();
      await informer.waitForSync();
      await waitFor(() => informer.list().length === 2, { what: 'both Sagas in the cache' });
      assert.equal(informer.lists, 1);

      proxy.cut();
      await p.api.deleteNamespacedCustomObject({ group: 'sagamesh.io', version: 'v1alpha1', namespace: NS, plural: 'sagas', name: 'removed' });
      await create(p, sagaObject('added'));
      await p.rig.compactEtcd();
      proxy.restore();

      await waitFor(() => informer.get('added', NS) && !informer.get('removed', NS), { timeoutMs: 30_000, what: 'the cache to catch up' });
      assert.equal(informer.lists, 2, 'exactly one relist: the resumed watch got 410 Gone');
      assert.deepEqual(informer.list().map((s) => s.metadata.name).sort(), ['added', 'kept']);
      assert.ok(seen.includes('delete removed'), 'the deletion missed while away is reported');
      assert.ok(seen.includes('add added'));

      // Afterwards the watch works as before.
      await create(p, sagaObject('later'));
      await waitFor(() => informer.get('later', NS), { what: 'a new Saga through the new watch' });
      assert.equal(informer.lists, 2);
    } finally {
      await informer.stop();
      await proxy.close();
    }
  });
});
