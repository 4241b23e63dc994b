/**
 * The operator's integration rig: a real kube-apiserver + etcd (@sagamesh/testing's startKubeRig), a real
 * nats-server, the real saga engine and participants in-process, and the operator either in-process
 * or as child processes (to SIGKILL them).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoordinationV1Api, CustomObjectsApi, EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  SAGAMESH_API_VERSION,
  SAGAMESH_GROUP,
  SAGAMESH_VERSION,
  orderFulfillmentDefinition,
  type SagaDefinitionObject,
  type SagaDefinitionSpec,
  type SagaObject,
  type SagaSpec,
} from '@sagamesh/contracts';
import { loadConfig, type Started } from '@sagamesh/runtime';
import { freePort, type KubeRig, type KubeRigOptions, type NatsServer, REPO_ROOT, startKubeRig, startNatsServer, waitFor } from '@sagamesh/testing';
import { start as startOrchestrator, OrchestratorConfigSchema } from '@sagamesh/orchestrator';
import { start as startInventory, InventoryConfigSchema } from '@sagamesh/inventory';
import { start as startPayments, PaymentsConfigSchema } from '@sagamesh/payments';
import { start as startShipping, ShippingConfigSchema } from '@sagamesh/shipping';
import { toolPath } from '../../scripts/lib/tools.ts';
import { OperatorConfig, start as startOperator } from '../src/index.ts';

export const KUBECTL = toolPath('kubectl');
export const NS = 'default';
const run = promisify(execFile);

/** Short lease timings so that hand-over tests take seconds. */
export const FAST_LEASE = { LEASE_DURATION_MS: '2000', LEASE_RENEW_DEADLINE_MS: '1500', LEASE_RETRY_PERIOD_MS: '250' } as const;

export interface Platform {
  rig: KubeRig;
  nats: NatsServer | undefined;
  kc: KubeConfig;
  api: CustomObjectsApi;
  events: EventsV1Api;
  leases: CoordinationV1Api;
  stop(): Promise<void>;
}

/** The rig, and unless `engine: false`, nats-server + the engine + inventory, payments, shipping. */
export async function startPlatform(opts: { rig?: KubeRigOptions; engine?: boolean } = {}): Promise<Platform> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => console.error('cleanup failed', err));
  };
  try {
    const [rig, nats] = await Promise.all([startKubeRig(opts.rig), opts.engine === false ? undefined : startNatsServer({ jetstream: true })]);
    cleanups.push(() => rig.stop());
    if (nats) {
      cleanups.push(() => nats.stop());
      // The Saga tests inject per-run faults: the participants apply them.
      const env = { NATS_URL: nats.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', FAULT_INJECTION: 'true' };
      const engine = await startOrchestrator(loadConfig(OrchestratorConfigSchema, env));
      cleanups.push(() => engine.stop());
      const participants: Started[] = await Promise.all([
        startInventory(loadConfig(InventoryConfigSchema, env)),
        startPayments(loadConfig(PaymentsConfigSchema, env)),
        startShipping(loadConfig(ShippingConfigSchema, env)),
      ]);
      for (const p of participants) cleanups.push(() => p.stop());
    }
    const kc = new KubeConfig();
    kc.loadFromFile(rig.kubeconfigPath);
    return {
      rig,
      nats,
      kc,
      api: kc.makeApiClient(CustomObjectsApi),
      events: kc.makeApiClient(EventsV1Api),
      leases: kc.makeApiClient(CoordinationV1Api),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function operatorEnv(p: Platform, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KUBECONFIG: p.rig.kubeconfigPath,
    NATS_URL: p.nats!.url,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RESYNC_MS: '5000',
    ...FAST_LEASE,
    ...extra,
  };
}

export async function startOperatorInProcess(p: Platform, extra: Record<string, string> = {}) {
  return startOperator(loadConfig(OperatorConfig, operatorEnv(p, extra)));
}

export interface OperatorProcess {
  identity: string;
  port: number;
  proc: ChildProcess;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

/** The operator's real entry point (operator/src/main.ts) as a child process. */
export async function spawnOperator(p: Platform, identity: string, extra: Record<string, string> = {}, logFile?: string): Promise<OperatorProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'operator', 'src', 'main.ts')], {
    env: { ...process.env, ...operatorEnv(p, { IDENTITY: identity, PORT: String(port), ...extra }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (logFile) {
    const out = createWriteStream(logFile, { flags: 'a' });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
  } else {
    proc.stdout!.resume();
    proc.stderr!.pipe(process.stderr);
  }
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  await waitFor(async () => alive() && (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok, { timeoutMs: 30_000, what: `operator ${identity} ready` });
  return {
    identity,
    port,
    proc,
    kill: async () => {
      if (alive()) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (alive()) proc.kill('SIGTERM');
      await exited;
    },
  };
}

// ---- objects ----

export function definitionObject(name: string, spec: SagaDefinitionSpec = orderFulfillmentDefinition): SagaDefinitionObject {
  return { apiVersion: SAGAMESH_API_VERSION, kind: 'SagaDefinition', metadata: { name, namespace: NS }, spec: structuredClone(spec) };
}

export function sagaObject(name: string, spec: Partial<SagaSpec> = {}): SagaObject {
  return {
    apiVersion: SAGAMESH_API_VERSION,
    kind: 'Saga',
    metadata: { name, namespace: NS },
    spec: {
      definitionRef: { name: 'order-fulfillment' },
      input: { customerId: `c-${name}`, items: [{ sku: 'sku-1', quantity: 1 }], amountCents: 8999 },
      ...spec,
    },
  };
}

const plural = (kind: string) => (kind === 'Saga' ? 'sagas' : 'sagadefinitions');

export async function create<T extends SagaObject | SagaDefinitionObject>(p: Platform, obj: T): Promise<T> {
  return (await p.api.createNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: plural(obj.kind!), body: obj })) as T;
}

export async function getSaga(p: Platform, name: string): Promise<SagaObject | undefined> {
  try {
    return (await p.api.getNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagas', name })) as SagaObject;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export async function getDefinition(p: Platform, name: string): Promise<SagaDefinitionObject> {
  return (await p.api.getNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagadefinitions', name })) as SagaDefinitionObject;
}

export async function deleteSaga(p: Platform, name: string): Promise<void> {
  await p.api.deleteNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagas', name });
}

export const TERMINAL = ['Succeeded', 'Compensated', 'Failed'];

/** Waits until the Saga's status satisfies `pred` (default: a terminal phase). */
export async function waitForSaga(p: Platform, name: string, pred: (s: SagaObject) => boolean = (s) => TERMINAL.includes(s.status?.phase ?? ''), timeoutMs = 60_000): Promise<SagaObject> {
  return waitFor(async () => {
    const s = await getSaga(p, name);
    return s && pred(s) ? s : undefined;
  }, { timeoutMs, intervalMs: 100, what: `Saga ${name}` });
}

/** Events recorded about an object, oldest first. */
export async function eventsFor(p: Platform, uid: string) {
  const list = await p.events.listNamespacedEvent({ namespace: NS, fieldSelector: `regarding.uid=${uid}` });
  // eventTime arrives as the API's string (microseconds): it sorts as text.
  const time = (e: (typeof list.items)[number]) => String(e.eventTime);
  return list.items.sort((a, b) => (time(a) < time(b) ? -1 : time(a) > time(b) ? 1 : 0));
}

export async function kubectl(p: Platform, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(KUBECTL, args, { env: { ...process.env, KUBECONFIG: p.rig.kubeconfigPath } });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

// ---- the audit log: who wrote what ----

export interface AuditEvent {
  verb: string;
  stage: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; name?: string; namespace?: string };
  responseStatus?: { code?: number };
}

/** Successful writes to sagamesh objects, from the API server's audit log. */
export function auditedWrites(rig: KubeRig): AuditEvent[] {
  return readFileSync(rig.auditLogPath!, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.stage === 'ResponseComplete' && (e.responseStatus?.code ?? 0) < 300);
}
