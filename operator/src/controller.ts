/**
 * The controller: informers feed a work queue of keys; while this replica leads, workers take keys,
 * observe (informer cache + the engine's view of the run), ask the pure decision (decision.ts) what
 * to do, and do it. Every write checks leadership first; a write that lost a race (409) re-reads the
 * object and decides again; a failed reconcile comes back with per-key exponential backoff; a periodic
 * resync re-queues what is unfinished, as a safety net under the engine's progress events.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  SAGA_FINALIZER,
  isTerminalPhase,
  type DefineRequest,
  type DefineResponse,
  type EngineErrorCode,
  type GetResponse,
  type RunRef,
  type RunView,
  type SagaDefinitionObject,
  type SagaObject,
  type StartRequest,
  type StartResponse,
} from '@sagamesh/contracts';
import { EngineRequestError, type Logger } from '@sagamesh/kit';
import type { EventRecorder } from './events.ts';
import { ResilientInformer } from './informer.ts';
import { ConflictError, KubeApi, type Kind } from './kube.ts';
import type { OperatorMetrics } from './metrics.ts';
import { WorkQueue, runWorkers } from './queue.ts';
import { decideDefinition, decideSaga, type DefinitionObservation, type SagaObservation } from './decision.ts';

/** The engine API the operator uses (kit's EngineClient over NATS). */
export interface EngineApi {
  define(req: DefineRequest): Promise<DefineResponse>;
  start(req: StartRequest): Promise<StartResponse>;
  /** Compensates what the run did; answers the run as it is then. */
  cancel(req: RunRef): Promise<GetResponse>;
  get(req: RunRef): Promise<GetResponse>;
}

/** The engine's typed error code of a failed request; undefined when the engine could not be asked. */
export function engineErrorCode(err: unknown): EngineErrorCode | undefined {
  return err instanceof EngineRequestError ? err.code : undefined;
}

/** This replica stopped leading while a reconcile ran: it must not write. */
export class NotLeaderError extends Error {
  constructor() {
    super('not the leader: the reconcile stops before writing');
    this.name = 'NotLeaderError';
  }
}

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  kube: KubeApi;
  engine: EngineApi;
  events: EventRecorder;
  log: Logger;
  metrics: OperatorMetrics;
  isLeader: () => boolean;
  workers: number;
  resyncMs: number;
  /** Only this namespace (default all). */
  namespace?: string;
}

const MAX_ROUNDS = 6;
const MAX_HISTORY = 64;
const keyOf = (kind: Kind, ns: string | undefined, name: string | undefined) => `${kind}/${ns ?? 'default'}/${name ?? ''}`;
const parseKey = (key: string) => {
  const [kind, namespace, name] = key.split('/') as [Kind, string, string];
  return { kind, namespace, name };
};

export class Controller {
  readonly sagas: ResilientInformer<SagaObject>;
  readonly definitions: ResilientInformer<SagaDefinitionObject>;
  readonly #o: ControllerOptions;
  /** Saga uid (= run id) → key, so a progress event finds its Saga. */
  readonly #byUid = new Map<string, string>();
  /** Views of runs from progress events, not yet mirrored (newest last, bounded). */
  readonly #history = new Map<string, RunView[]>();
  /** The run version last mirrored into each Saga's status. */
  readonly #mirrored = new Map<string, number>();
  #queue: WorkQueue | undefined;
  #workers: Promise<void> | undefined;
  #resync: NodeJS.Timeout | undefined;

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    const { kube, log, kubeConfig, namespace } = opts;
    this.sagas = new ResilientInformer<SagaObject>({
      kubeConfig,
      path: KubeApi.watchPath('Saga', namespace),
      list: () => kube.list<SagaObject>('Saga', namespace),
      log,
      onEvent: (event, saga) => {
        const key = keyOf('Saga', saga.metadata.namespace, saga.metadata.name);
        const uid = saga.metadata.uid ?? '';
        if (event === 'delete') {
          this.#byUid.delete(uid);
          this.#history.delete(uid);
          this.#mirrored.delete(uid);
        } else this.#byUid.set(uid, key);
        this.#queue?.add(key);
      },
    });
    this.definitions = new ResilientInformer<SagaDefinitionObject>({
      kubeConfig,
      path: KubeApi.watchPath('SagaDefinition', namespace),
      list: () => kube.list<SagaDefinitionObject>('SagaDefinition', namespace),
      log,
      onEvent: (event, def) => {
        if (event !== 'delete') this.#queue?.add(keyOf('SagaDefinition', def.metadata.namespace, def.metadata.name));
        // Sagas waiting for this definition may start now (or say why they wait).
        for (const saga of this.sagas.list(def.metadata.namespace)) {
          if (saga.spec?.definitionRef?.name === def.metadata.name && !saga.status?.runId) this.#queue?.add(keyOf('Saga', saga.metadata.namespace, saga.metadata.name));
        }
      },
    });
  }

  startInformers(): void {
    this.sagas.start();
    this.definitions.start();
  }

  synced(): boolean {
    return this.sagas.synced() && this.definitions.synced();
  }

  /** Leading: reconcile everything once, then on every change. */
  async activate(): Promise<void> {
    if (this.#queue) return;
    const queue = new WorkQueue({ onDepth: (d) => this.#o.metrics.queueDepth.set(d) });
    this.#queue = queue;
    await Promise.all([this.sagas.waitForSync(), this.definitions.waitForSync()]);
    if (this.#queue !== queue) return; // deactivated meanwhile
    this.#enqueueAll(true);
    this.#workers = runWorkers(queue, this.#o.workers, (key) => this.#process(queue, key));
    this.#resync = setInterval(() => this.#enqueueAll(false), this.#o.resyncMs);
  }

  /** Not leading (or stopping): stop taking keys and wait for the reconciles in flight. */
  async deactivate(): Promise<void> {
    const queue = this.#queue;
    if (!queue) return;
    this.#queue = undefined;
    clearInterval(this.#resync);
    queue.shutDown();
    await this.#workers;
    this.#o.metrics.queueDepth.set(0);
  }

  async stop(): Promise<void> {
    await this.deactivate();
    await Promise.all([this.sagas.stop(), this.definitions.stop()]);
  }

  /**
   * A progress event's view of a run: kept until mirrored, so that the next reconcile records an Event
   * for each transition in it; and its Saga is reconciled. Unknown run ids belong to deleted Sagas.
   */
  observeRun(view: RunView): void {
    const key = this.#byUid.get(view.runId);
    if (!key || !this.#queue) return;
    if (view.version > (this.#mirrored.get(view.runId) ?? -1)) {
      const views = this.#history.get(view.runId) ?? [];
      if (!views.some((v) => v.version === view.version)) views.push(view);
      if (views.length > MAX_HISTORY) views.shift();
      this.#history.set(view.runId, views);
    }
    this.#queue.add(key);
  }

  /** The run was mirrored up to `run.version`: older views are done with. */
  #mirroredUpTo(run: RunView): void {
    this.#mirrored.set(run.runId, Math.max(run.version, this.#mirrored.get(run.runId) ?? -1));
    const rest = (this.#history.get(run.runId) ?? []).filter((v) => v.version > run.version);
    if (rest.length > 0) this.#history.set(run.runId, rest);
    else this.#history.delete(run.runId);
  }

  #enqueueAll(everything: boolean): void {
    const queue = this.#queue;
    if (!queue) return;
    for (const def of this.definitions.list()) queue.add(keyOf('SagaDefinition', def.metadata.namespace, def.metadata.name));
    for (const saga of this.sagas.list()) {
      // Finished Sagas without a finalizer need nothing more; the resync skips them.
      const finished = saga.status?.phase !== undefined && isTerminalPhase(saga.status.phase) && !saga.metadata.finalizers?.includes(SAGA_FINALIZER);
      if (everything || !finished) queue.add(keyOf('Saga', saga.metadata.namespace, saga.metadata.name));
    }
  }

  async #process(queue: WorkQueue, key: string): Promise<void> {
    const { kind } = parseKey(key);
    const end = this.#o.metrics.duration.startTimer({ kind });
    try {
      if (kind === 'Saga') await this.#reconcileSaga(key);
      else await this.#reconcileDefinition(key);
      queue.forget(key);
      this.#o.metrics.reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      this.#o.metrics.reconciles.inc({ kind, result: 'error' });
      if (err instanceof NotLeaderError) return;
      this.#o.metrics.errors.inc({ kind });
      const delayMs = queue.addRateLimited(key);
      this.#o.log.warn({ err, key, delayMs, failures: queue.failures(key) }, 'reconcile failed: requeued');
    } finally {
      end();
    }
  }

  #mustLead(): void {
    if (!this.#o.isLeader() || !this.#queue) throw new NotLeaderError();
  }

  async #getRun(runId: string): Promise<RunView | undefined> {
    try {
      return (await this.#o.engine.get({ runId })).run;
    } catch (err) {
      if (engineErrorCode(err) === 'not_found') return undefined;
      throw err;
    }
  }

  async #reconcileSaga(key: string): Promise<void> {
    const { namespace, name } = parseKey(key);
    const cached = this.sagas.get(name, namespace);
    if (!cached) return;
    const { kube, engine, log } = this.#o;
    const obs: SagaObservation = {
      saga: cached,
      definition: this.definitions.get(cached.spec.definitionRef.name, namespace),
      run: await this.#getRun(cached.metadata.uid!),
      history: [...(this.#history.get(cached.metadata.uid!) ?? [])],
      now: new Date().toISOString(),
    };
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const actions = decideSaga(obs);
      let observeAgain = false;
      try {
        for (const action of actions) {
          this.#mustLead();
          switch (action.type) {
            case 'addFinalizer':
            case 'removeFinalizer': {
              const others = (obs.saga.metadata.finalizers ?? []).filter((f) => f !== SAGA_FINALIZER);
              const next = await kube.setFinalizers('Saga', obs.saga, action.type === 'addFinalizer' ? [...others, SAGA_FINALIZER] : others);
              if (!next) return; // deleted
              obs.saga = next;
              break;
            }
            case 'updateStatus': {
              const next = await kube.replaceStatus('Saga', obs.saga, action.status);
              if (!next) return;
              obs.saga = next;
              break;
            }
            case 'event':
              this.#o.events.record('Saga', obs.saga, action.event);
              break;
            case 'start':
              try {
                obs.run = (await engine.start(action.request)).run;
                log.info({ key, runId: action.request.runId, revision: action.request.revision }, 'run started');
              } catch (err) {
                const code = engineErrorCode(err);
                if (code !== 'invalid_request') {
                  // The engine lost or never got this definition revision: register it again, then retry.
                  if (code === 'unknown_definition' || code === 'revision_mismatch') this.#queue?.add(keyOf('SagaDefinition', namespace, obs.saga.spec.definitionRef.name));
                  throw err;
                }
                obs.startRefused = { code, message: (err as Error).message };
              }
              observeAgain = true;
              break;
            case 'cancel':
              obs.run = (await engine.cancel({ runId: action.runId })).run;
              obs.cancelSent = true;
              log.info({ key, runId: action.runId, phase: obs.run.phase }, 'run cancelled: the Saga is being deleted');
              observeAgain = true;
              break;
          }
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        const fresh = await kube.get<SagaObject>('Saga', namespace, name);
        if (!fresh) return;
        obs.saga = fresh;
        observeAgain = true;
      }
      if (!observeAgain) {
        if (obs.run) this.#mirroredUpTo(obs.run);
        return;
      }
      obs.now = new Date().toISOString();
    }
    throw new Error(`Saga ${namespace}/${name} did not settle in ${MAX_ROUNDS} rounds`);
  }

  async #reconcileDefinition(key: string): Promise<void> {
    const { namespace, name } = parseKey(key);
    const cached = this.definitions.get(name, namespace);
    if (!cached) return;
    const { kube, engine } = this.#o;
    const obs: DefinitionObservation = { definition: cached, now: new Date().toISOString() };
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let observeAgain = false;
      try {
        for (const action of decideDefinition(obs)) {
          this.#mustLead();
          switch (action.type) {
            case 'define':
              try {
                const res = await engine.define(action.request);
                obs.registered = { key: res.key, revision: res.revision };
              } catch (err) {
                const code = engineErrorCode(err);
                if (code !== 'invalid_request') throw err;
                obs.registered = { refused: { code, message: (err as Error).message } };
              }
              observeAgain = true;
              break;
            case 'updateStatus': {
              const next = await kube.replaceStatus('SagaDefinition', obs.definition, action.status);
              if (!next) return;
              obs.definition = next;
              break;
            }
            case 'event':
              this.#o.events.record('SagaDefinition', obs.definition, action.event);
              break;
          }
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        const fresh = await kube.get<SagaDefinitionObject>('SagaDefinition', namespace, name);
        if (!fresh) return;
        obs.definition = fresh;
        observeAgain = true;
      }
      if (!observeAgain) return;
      obs.now = new Date().toISOString();
    }
    throw new Error(`SagaDefinition ${namespace}/${name} did not settle in ${MAX_ROUNDS} rounds`);
  }
}
