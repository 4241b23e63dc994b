/**
 * The saga operator: translates between the Kubernetes API (SagaDefinition and Saga resources) and
 * the saga engine over NATS. It executes no step itself: it registers definitions, starts a run per
 * Saga (run id = the Saga's uid), mirrors each run's progress into .status, Conditions and Events, and
 * cancels (compensates) the run of a Saga deleted mid-way. One replica leads (a Lease); the others
 * keep warm caches and take over when it goes.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { Consumers, SagaEvent, Streams, Subjects, validator } from '@sagamesh/contracts';
import { bootService, type ConsumerHandle, decodeMessage, runConsumer, type Started } from '@sagamesh/runtime';
import { EngineClient } from '@sagamesh/participant';
import { checkLeaseTimings, type OperatorConfig } from './config.ts';
import { Controller } from './controller.ts';
import { EventRecorder } from './events.ts';
import { KubeApi } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { createOperatorMetrics } from './metrics.ts';

export { OperatorConfig } from './config.ts';

const SERVICE = 'operator';
const EVENT_FLUSH_MS = 2000;
const sagaEventValidator = validator(SagaEvent, 'saga event');

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

export function start(config: OperatorConfig): Promise<Started & { identity: string; isLeader(): boolean }> {
  checkLeaseTimings(config);
  const identity = config.IDENTITY || `${hostname()}-${process.pid}`;
  return bootService(SERVICE, config, async ({ log, metrics: serviceMetrics, shutdown, nc, js, jsm }) => {
    const metrics = createOperatorMetrics(serviceMetrics);
    const kc = loadKubeConfig(config.KUBECONFIG);
    const kube = new KubeApi(kc, identity);
    const events = new EventRecorder({ kube, log });
    let elector: LeaderElector | undefined;
    const controller = new Controller({
      kubeConfig: kc,
      kube,
      engine: new EngineClient(nc, { timeoutMs: config.ENGINE_TIMEOUT_MS }),
      events,
      log,
      metrics,
      isLeader: () => elector?.isLeader() ?? false,
      workers: config.WORKERS,
      resyncMs: config.RESYNC_MS,
      ...(config.WATCH_NAMESPACE ? { namespace: config.WATCH_NAMESPACE } : {}),
    });
    controller.startInformers();
    shutdown.onShutdown(() => controller.stop(), 'informers');

    // Only the leader reads progress events: they only trigger reconciles, which only the leader runs.
    let consumer: ConsumerHandle | undefined;
    let stopping = false;
    const lead = async () => {
      if (stopping) return;
      metrics.isLeader.set(1);
      consumer = runConsumer({
        nc,
        js,
        jsm,
        stream: Streams.sagaEvents.name,
        consumer: { durable: Consumers.operatorSagaEvents, filterSubjects: [Subjects.sagaEventsOf('k8s')], deliverPolicy: 'new' },
        concurrency: 16,
        service: SERVICE,
        log,
        metrics: serviceMetrics,
        handler: async (msg) => {
          controller.observeRun(decodeMessage(msg, sagaEventValidator).data.run);
          return 'ack';
        },
      });
      await controller.activate();
    };
    const follow = async () => {
      metrics.isLeader.set(0);
      await controller.deactivate();
      const c = consumer;
      consumer = undefined;
      await c?.stop();
    };
    const leader = new LeaderElector({
      api: kc.makeApiClient(CoordinationV1Api),
      namespace: config.LEASE_NAMESPACE,
      name: config.LEASE_NAME,
      identity,
      leaseDurationMs: config.LEASE_DURATION_MS,
      renewDeadlineMs: config.LEASE_RENEW_DEADLINE_MS,
      retryPeriodMs: config.LEASE_RETRY_PERIOD_MS,
      log,
      onStartedLeading: () => void lead().catch((err: unknown) => log.error({ err }, 'could not start leading')),
      onStoppedLeading: () => void follow().catch((err: unknown) => log.error({ err }, 'could not stop leading cleanly')),
    });
    elector = leader;
    leader.start();
    // Finish the reconciles in flight before releasing the lease, so that no write follows the release.
    shutdown.onShutdown(async () => {
      stopping = true;
      await follow();
      // Events are best-effort: a slow API server does not hold the shutdown for long.
      await Promise.race([events.flush(), sleep(EVENT_FLUSH_MS, undefined, { ref: false })]);
      await leader.stop();
    }, 'lease');

    log.info({ identity, lease: `${config.LEASE_NAMESPACE}/${config.LEASE_NAME}` }, 'watching Sagas; electing a leader');
    return {
      ready: () => controller.synced(),
      routes: (app) => app.get('/healthz', (_req, res) => void res.json({ status: 'ok', leader: leader.isLeader() })),
      identity,
      isLeader: () => leader.isLeader(),
    };
  }, { natsName: `${SERVICE}-${identity}` });
}
