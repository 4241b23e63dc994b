/**
 * The platform as `make up OFFLINE=1` left it: every workload rolled out and Ready (so its probes pass), every pod
 * non-root on a read-only root filesystem with no capabilities, the operator holding its Lease with exactly the RBAC it
 * needs, and the cluster's Docker network unable to forward anywhere but itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { inboxPrefixOf, ServiceNames, Streams } from '@sagamesh/contracts';
import { isPermissionDenied } from '@sagamesh/runtime';
import { dockerEnv, kubectl, kubectlJson, NAMESPACE, phase, portForward } from './live.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const run = promisify(execFile);
const WORKLOADS = [...ServiceNames, 'operator'];

describe('the platform on the live cluster', () => {
  it('every Deployment and the NATS StatefulSet are rolled out with all replicas Ready', async () => {
    phase('platform: rollouts');
    const deploys = await kubectlJson<{ items: any[] }>(['-n', NAMESPACE, 'get', 'deploy']);
    const names = deploys.items.map((d) => d.metadata.name);
    for (const w of WORKLOADS) assert.ok(names.includes(w), `Deployment ${w} exists (have ${names.join(', ')})`);
    for (const d of deploys.items) {
      const want = d.spec.replicas ?? 1;
      assert.equal(d.status.readyReplicas ?? 0, want, `${d.metadata.name}: ${d.status.readyReplicas ?? 0}/${want} ready`);
      assert.equal(d.status.updatedReplicas ?? 0, want, `${d.metadata.name}: rollout finished`);
    }
    const nats = await kubectlJson(['-n', 'nats', 'get', 'statefulset', 'nats']);
    assert.equal(nats.spec.replicas, 3, 'a 3-node JetStream cluster');
    assert.equal(nats.status.readyReplicas, 3);
  });

  it('no workload crash-looped while NATS formed its cluster (services wait for JetStream instead of exiting)', async () => {
    const pods = (await kubectlJson<{ items: any[] }>(['-n', NAMESPACE, 'get', 'pods'])).items;
    const restarted: string[] = [];
    for (const p of pods) {
      for (const c of (p.status.containerStatuses ?? []).filter((s: any) => s.restartCount > 0)) {
        const t = c.lastState?.terminated ?? {};
        // Why it restarted, in the failure itself: CI keeps only this output.
        const previous = await kubectl(['-n', NAMESPACE, 'logs', p.metadata.name, '-c', c.name, '--previous', '--tail', '15']).catch((e) => `(no previous log: ${e.message})`);
        const events = await kubectl(['-n', NAMESPACE, 'get', 'events', '--field-selector', `involvedObject.name=${p.metadata.name}`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message', '--no-headers']).catch(() => '');
        restarted.push(`${p.metadata.name}/${c.name}: ${c.restartCount} restarts (${t.reason ?? '?'}, exit ${t.exitCode ?? '?'})\n  events:\n${events}\n  previous log:\n${previous}`);
      }
    }
    assert.deepEqual(restarted, []);
  });

  it('the request path (gateway, orders, orchestrator) runs at least 2 replicas', async () => {
    for (const w of ['gateway', 'orders', 'orchestrator']) {
      const d = await kubectlJson(['-n', NAMESPACE, 'get', 'deploy', w]);
      assert.ok((d.status.readyReplicas ?? 0) >= 2, `${w}: ${d.status.readyReplicas} ready replicas`);
    }
  });

  it('every pod of the platform and NATS runs non-root, read-only root filesystem, no capabilities, no privilege escalation', async () => {
    const pods = [
      ...(await kubectlJson<{ items: any[] }>(['-n', NAMESPACE, 'get', 'pods'])).items,
      ...(await kubectlJson<{ items: any[] }>(['-n', 'nats', 'get', 'pods'])).items,
    ];
    assert.ok(pods.length >= WORKLOADS.length + 3);
    for (const p of pods) {
      const podSc = p.spec.securityContext ?? {};
      for (const c of [...(p.spec.initContainers ?? []), ...p.spec.containers]) {
        const sc = { ...podSc, ...(c.securityContext ?? {}) };
        const where = `${p.metadata.name}/${c.name}`;
        assert.equal(sc.runAsNonRoot, true, `${where} runAsNonRoot`);
        assert.ok(sc.runAsUser === undefined || sc.runAsUser > 0, `${where} runAsUser ${sc.runAsUser}`);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where} readOnlyRootFilesystem`);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where} allowPrivilegeEscalation`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where} drops ALL capabilities`);
      }
    }
    // What the kernel says, not only the spec: the gateway's process runs as uid 1000 and cannot write to /.
    const uid = (await kubectl(['-n', NAMESPACE, 'exec', 'deploy/gateway', '--', 'node', '-e', 'process.stdout.write(String(process.getuid()))'])).trim();
    assert.notEqual(uid, '0');
    const write = await kubectl(['-n', NAMESPACE, 'exec', 'deploy/gateway', '--', 'node', '-e',
      "try { require('fs').writeFileSync('/probe', 'x'); console.log('wrote') } catch (e) { console.log(e.code) }"]);
    assert.match(write.trim(), /^(EROFS|EACCES)$/);
  });

  it('the operator holds its Lease, and its RBAC allows what it needs and nothing broader', async () => {
    const lease = await kubectlJson(['-n', NAMESPACE, 'get', 'lease', 'sagamesh-operator']);
    const holder: string = lease.spec.holderIdentity;
    const operatorPods = await kubectlJson<{ items: any[] }>(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/name=operator']);
    assert.ok(operatorPods.items.some((p) => holder.startsWith(p.metadata.name)), `the holder ${holder} is an operator pod`);
    const renewed = Date.parse(lease.spec.renewTime);
    assert.ok(Date.now() - renewed < (lease.spec.leaseDurationSeconds ?? 15) * 1000 + 5000, `renewed recently (${lease.spec.renewTime})`);
    const as = ['--as', `system:serviceaccount:${NAMESPACE}:operator`];
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', ...args, ...as]).catch((e) => e.stdout ?? 'no')).trim();
    assert.equal(await can('update', 'sagas.sagamesh.io/status', '-A'), 'yes');
    assert.equal(await can('watch', 'sagadefinitions.sagamesh.io', '-A'), 'yes');
    assert.equal(await can('update', 'leases.coordination.k8s.io/sagamesh-operator', '-n', NAMESPACE), 'yes');
    assert.equal(await can('update', 'leases.coordination.k8s.io/someone-elses', '-n', NAMESPACE), 'no', 'only its own Lease');
    assert.equal(await can('create', 'events', '-n', 'default'), 'yes');
    assert.equal(await can('get', 'secrets', '-A'), 'no');
    assert.equal(await can('delete', 'pods', '-n', NAMESPACE), 'no');
    assert.equal(await can('*', '*', '-A'), 'no');
  });

  it('NATS admits only the identities of the platform: no password, no entry; a service may not delete a stream; the admin provisioned them', async () => {
    phase('platform: NATS identities');
    const job = await kubectlJson(['-n', NAMESPACE, 'get', 'job', 'nats-provision']);
    assert.equal(job.status.succeeded, 1, 'the provisioning Job completed');
    const password = (identity: string) => readFileSync(path.join(REPO_ROOT, '.dev/cluster/nats', identity), 'utf8').trim();
    // One port-forward per check: kubectl port-forward can end when the server drops a connection it refused.
    const viaForward = async (check: (servers: string) => Promise<void>) => {
      const fwd = await portForward('nats', 'svc/nats', 4222);
      try {
        await check(fwd.url.replace('http://', 'nats://'));
      } finally {
        fwd.stop();
      }
    };
    await viaForward(async (servers) => {
      const payments = await connect({ servers, user: 'payments', pass: password('payments'), inboxPrefix: inboxPrefixOf('payments'), reconnect: false });
      try {
        const jsm = await jetstreamManager(payments);
        // A permission refusal, not any failure: a broken connection must not pass for one.
        await assert.rejects(jsm.streams.delete(Streams.orders.name), (err: unknown) => isPermissionDenied(err), 'payments may not delete ORDERS');
      } finally {
        await payments.close();
      }
      const admin = await connect({ servers, user: 'admin', pass: password('admin'), inboxPrefix: inboxPrefixOf('admin'), reconnect: false });
      try {
        const info = await (await jetstreamManager(admin)).streams.info(Streams.orders.name);
        assert.equal(info.config.num_replicas, 3, 'ORDERS provisioned with 3 replicas');
      } finally {
        await admin.close();
      }
    });
    await viaForward((servers) => assert.rejects(connect({ servers, reconnect: false }), /Authorization Violation/i, 'an unauthenticated client is refused'));
    await viaForward((servers) => assert.rejects(connect({ servers, user: 'payments', pass: 'not-its-password', reconnect: false }), /Authorization Violation/i));
  });

  it('nothing leaves the machine: DOCKER-USER drops forwarding from the kind network to any other interface', async () => {
    const { stdout: bridge } = await run('bash', ['scripts/cluster/docker.sh', 'bridge'], { cwd: REPO_ROOT });
    const br = bridge.trim();
    assert.match(br, /^br-[0-9a-f]{12}$/);
    // -C exits 0 only when exactly this rule is in the chain.
    await run('iptables', ['-C', 'DOCKER-USER', '-i', br, '!', '-o', br, '-j', 'DROP']);
    const { stdout: chain } = await run('iptables', ['-S', 'DOCKER-USER']);
    const rules = chain.split('\n').filter((l) => l.startsWith('-A DOCKER-USER'));
    const ours = rules.indexOf(`-A DOCKER-USER -i ${br} ! -o ${br} -j DROP`);
    const firstReturn = rules.findIndex((r) => / -j RETURN$/.test(r));
    assert.ok(ours >= 0 && (firstReturn < 0 || ours < firstReturn), `the drop comes before any RETURN:\n${rules.join('\n')}`);
    const nodes = await kubectlJson<{ items: any[] }>(['get', 'nodes']);
    assert.equal(nodes.items.length, 3);
    // Every node sits on that network, so the rule covers every pod's egress.
    const { stdout: members } = await run('docker', ['network', 'inspect', 'kind', '-f', '{{range .Containers}}{{.Name}} {{end}}'], { env: dockerEnv() });
    for (const n of nodes.items) assert.ok(members.split(' ').includes(n.metadata.name), `${n.metadata.name} on the kind network`);
  });
});
