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
import { EngineRequestError } from '@sagamesh/participant';
import type { Logger } from '@sagamesh/runtime';
import type { EventRecorder } from './events.ts';
import { ResilientInformer, type InformerEvent } from './informer.ts';
import { ConflictError, KubeApi, type Kind } from './kube.ts';
import type { OperatorMetrics } from './metrics.ts';
import { WorkQueue, runWorkers } from './queue.ts';
import { decideDefinition, decideSaga, type DefinitionAction, type DefinitionObservation, type SagaAction, type SagaObservation } from './decision.ts';

/** The engine API the operator uses (the participant SDK's EngineClient over NATS). */
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

/** The actions that only report what was observed, on the object itself or as an Event. */
type Report = Extract<SagaAction | DefinitionAction, { type: 'updateStatus' | 'event' }>;

/** What one action did: nothing new to look at, something new (decide again), or the object is gone. */
type Outcome = 'done' | 'observe-again' | 'gone';

/** One reconcile's loop parts: the pure decision, the action's I/O, and a re-read after a lost race. */
interface Round<O, A> {
  decide(obs: O): readonly A[];
  act(action: A): Promise<Outcome>;
  /** Reads the object again into the observation; false when it is gone. */
  reread(): Promise<boolean>;
}

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
    const informer = <T extends SagaObject | SagaDefinitionObject>(kind: Kind, onEvent: (event: InformerEvent, obj: T) => void) =>
      new ResilientInformer<T>({ kubeConfig, path: KubeApi.watchPath(kind, namespace), list: () => kube.list<T>(kind, namespace), log, onEvent });
    this.sagas = informer<SagaObject>('Saga', (event, saga) => {
      const key = keyOf('Saga', saga.metadata.namespace, saga.metadata.name);
      const uid = saga.metadata.uid ?? '';
      if (event === 'delete') {
        this.#byUid.delete(uid);
        this.#history.delete(uid);
        this.#mirrored.delete(uid);
      } else this.#byUid.set(uid, key);
      this.#queue?.add(key);
    });
    this.definitions = informer<SagaDefinitionObject>('SagaDefinition', (event, def) => {
      if (event !== 'delete') this.#queue?.add(keyOf('SagaDefinition', def.metadata.namespace, def.metadata.name));
      // Sagas waiting for this definition may start now (or say why they wait).
      for (const saga of this.sagas.list(def.metadata.namespace)) {
        if (saga.spec?.definitionRef?.name === def.metadata.name && !saga.status?.runId) this.#queue?.add(keyOf('Saga', saga.metadata.namespace, saga.metadata.name));
      }
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

  /**
   * Decides and acts until the decision asks for nothing that needs another look: each round runs the actions decided
   * on the observation; an action that learned something (an engine answer), or a write that lost a race (409: the
   * object is read again), asks for one more round. Returns false when the object is gone.
   */
  async #settle<O extends { now: string }, A>(what: string, obs: O, round: Round<O, A>): Promise<boolean> {
    for (let n = 0; n < MAX_ROUNDS; n++) {
      let again = false;
      try {
        for (const action of round.decide(obs)) {
          this.#mustLead();
          const outcome = await round.act(action);
          if (outcome === 'gone') return false;
          if (outcome === 'observe-again') again = true;
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (!(await round.reread())) return false;
        again = true;
      }
      if (!again) return true;
      obs.now = new Date().toISOString();
    }
    throw new Error(`${what} did not settle in ${MAX_ROUNDS} rounds`);
  }

  async #reconcileSaga(key: string): Promise<void> {
    const { namespace, name } = parseKey(key);
    const cached = this.sagas.get(name, namespace);
    if (!cached) return;
    const obs: SagaObservation = {
      saga: cached,
      definition: this.definitions.get(cached.spec.definitionRef.name, namespace),
      run: await this.#getRun(cached.metadata.uid!),
      history: [...(this.#history.get(cached.metadata.uid!) ?? [])],
      now: new Date().toISOString(),
    };
    const settled = await this.#settle(`Saga ${namespace}/${name}`, obs, {
      decide: decideSaga,
      act: (action) => this.#actOnSaga(key, obs, action),
      reread: async () => {
        const fresh = await this.#o.kube.get<SagaObject>('Saga', namespace, name);
        if (fresh) obs.saga = fresh;
        return fresh !== undefined;
      },
    });
    if (settled && obs.run) this.#mirroredUpTo(obs.run);
  }

  async #actOnSaga(key: string, obs: SagaObservation, action: SagaAction): Promise<Outcome> {
    const { kube, engine, log } = this.#o;
    /** The Saga as written; a write that found it gone ends the reconcile. */
    const written = (next: SagaObject | undefined): Outcome => {
      if (!next) return 'gone';
      obs.saga = next;
      return 'done';
    };
    switch (action.type) {
      case 'addFinalizer':
      case 'removeFinalizer': {
        const others = (obs.saga.metadata.finalizers ?? []).filter((f) => f !== SAGA_FINALIZER);
        return written(await kube.setFinalizers('Saga', obs.saga, action.type === 'addFinalizer' ? [...others, SAGA_FINALIZER] : others));
      }
      case 'updateStatus':
      case 'event':
        return written(await this.#report('Saga', obs.saga, action));
      case 'start':
        try {
          obs.run = (await engine.start(action.request)).run;
          log.info({ key, runId: action.request.runId, revision: action.request.revision }, 'run started');
        } catch (err) {
          const code = engineErrorCode(err);
          if (code !== 'invalid_request') {
            // The engine lost or never got this definition revision: register it again, then retry.
            if (code === 'unknown_definition' || code === 'revision_mismatch') this.#queue?.add(keyOf('SagaDefinition', obs.saga.metadata.namespace, obs.saga.spec.definitionRef.name));
            throw err;
          }
          obs.startRefused = { code, message: (err as Error).message };
        }
        return 'observe-again';
      case 'cancel':
        obs.run = (await engine.cancel({ runId: action.runId })).run;
        obs.cancelSent = true;
        log.info({ key, runId: action.runId, phase: obs.run.phase }, 'run cancelled: the Saga is being deleted');
        return 'observe-again';
    }
  }

  async #reconcileDefinition(key: string): Promise<void> {
    const { namespace, name } = parseKey(key);
    const cached = this.definitions.get(name, namespace);
    if (!cached) return;
    const obs: DefinitionObservation = { definition: cached, now: new Date().toISOString() };
    await this.#settle(`SagaDefinition ${namespace}/${name}`, obs, {
      decide: decideDefinition,
      act: (action) => this.#actOnDefinition(obs, action),
      reread: async () => {
        const fresh = await this.#o.kube.get<SagaDefinitionObject>('SagaDefinition', namespace, name);
        if (fresh) obs.definition = fresh;
        return fresh !== undefined;
      },
    });
  }

  async #actOnDefinition(obs: DefinitionObservation, action: DefinitionAction): Promise<Outcome> {
    switch (action.type) {
      case 'define':
        try {
          const res = await this.#o.engine.define(action.request);
          obs.registered = { key: res.key, revision: res.revision };
        } catch (err) {
          const code = engineErrorCode(err);
          if (code !== 'invalid_request') throw err;
          obs.registered = { refused: { code, message: (err as Error).message } };
        }
        return 'observe-again';
      case 'updateStatus':
      case 'event': {
        const next = await this.#report('SagaDefinition', obs.definition, action);
        if (next) obs.definition = next;
        return next ? 'done' : 'gone';
      }
    }
  }

  /** The actions both kinds share: write the status (the object as written; undefined when it is gone), or record an Event. */
  async #report<T extends SagaObject | SagaDefinitionObject>(kind: Kind, obj: T, action: Report): Promise<T | undefined> {
    if (action.type === 'event') {
      this.#o.events.record(kind, obj, action.event);
      return obj;
    }
    return this.#o.kube.replaceStatus(kind, obj, action.status);
  }
}
