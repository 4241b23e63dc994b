/**
 * The operator's reconcile decisions: pure functions from what is observed (the object from the
 * informer cache, its SagaDefinition, the engine's view of the run, the time) to the actions to take.
 * No I/O and no clock here; the controller performs the actions and, after an action that changes
 * what is observed (start, cancel, define), asks again.
 */
import {
  SAGA_FINALIZER,
  SagaDefinitionSpec,
  ValidationError,
  definitionProblems,
  isTerminalPhase,
  k8sDefinitionKey,
  runInputProblem,
  validator,
  type DefineRequest,
  type RunView,
  type SagaDefinitionObject,
  type SagaDefinitionStatus,
  type SagaObject,
  type SagaStatus,
  type StartRequest,
} from '@sagamesh/contracts';
import { setCondition } from './conditions.ts';
import { sagaStatusFromRun, sagaStatusWithoutRun, sameStatus } from './status.ts';
import { type EventSpec, transitionEvents } from './transition-events.ts';

export type SagaAction =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  | { type: 'updateStatus'; status: SagaStatus }
  | { type: 'event'; event: EventSpec }
  /** Changes what is observed: the controller performs it last and decides again. */
  | { type: 'start'; request: StartRequest }
  | { type: 'cancel'; runId: string };

export interface EngineRefusal {
  code: string;
  message: string;
}

export interface SagaObservation {
  saga: SagaObject;
  /** The SagaDefinition named by spec.definitionRef (same namespace); undefined when there is none. */
  definition: SagaDefinitionObject | undefined;
  /** The engine's view of the run (run id = the Saga's uid); undefined when the engine has no such run. */
  run: RunView | undefined;
  /** Older views of the run from its progress events, not yet mirrored: each transition in them gets its Event. */
  history?: readonly RunView[];
  /** The engine refused to start the run with a permanent error (the spec is immutable: retrying cannot help). */
  startRefused?: EngineRefusal;
  /** A cancel was already sent in this reconcile. */
  cancelSent?: boolean;
  /** ISO time. */
  now: string;
}

export type DefinitionAction =
  | { type: 'updateStatus'; status: SagaDefinitionStatus }
  | { type: 'event'; event: EventSpec }
  /** Changes what is observed: performed last, then the controller decides again with `registered`. */
  | { type: 'define'; request: DefineRequest };

export interface DefinitionObservation {
  definition: SagaDefinitionObject;
  /** The engine's answer to define in this reconcile: the key and revision, or a refusal. */
  registered?: { key: string; revision: string } | { refused: EngineRefusal };
  now: string;
}

// ---- the Saga decision ----

const hasFinalizer = (o: { metadata: { finalizers?: string[] } }) => o.metadata.finalizers?.includes(SAGA_FINALIZER) ?? false;

/**
 * The status write and the Events that take the Saga from its status to the run's: through every
 * older view of the run seen in progress events (so each transition gets its Event even when the run
 * moved on before this reconcile), each transition once.
 */
function mirror(saga: SagaObject, run: RunView, history: readonly RunView[], generation: number, now: string): SagaAction[] {
  const status = sagaStatusFromRun(saga.status, run, generation, now);
  if (sameStatus(saga.status, status)) return [];
  const events = new Map<string, EventSpec>();
  let prev = saga.status;
  const between = history.filter((v) => v.version < run.version).sort((a, b) => a.version - b.version);
  for (const view of [...between, run]) {
    const next = view === run ? status : sagaStatusFromRun(prev, view, generation, now);
    for (const e of transitionEvents(prev, next)) if (!events.has(e.key)) events.set(e.key, e);
    prev = next;
  }
  return [{ type: 'updateStatus', status }, ...[...events.values()].map((event) => ({ type: 'event' as const, event }))];
}

/** Why a Saga cannot start yet; undefined when its definition is registered for the current generation. */
function definitionBlocker(saga: SagaObject, def: SagaDefinitionObject | undefined): string | undefined {
  const ref = saga.spec.definitionRef.name;
  if (!def) return `waiting for SagaDefinition ${ref}: there is none in namespace ${saga.metadata.namespace}`;
  const ready = def.status?.conditions?.find((c) => c.type === 'Ready');
  const current = def.status?.observedGeneration === def.metadata.generation;
  if (current && ready && ready.status !== 'True') return `SagaDefinition ${ref} is not ready (${ready.reason}): ${ready.message}`;
  if (!current || !ready || !def.status?.revision) return `waiting for SagaDefinition ${ref} to be registered with the engine`;
  return undefined;
}

export function decideSaga(o: SagaObservation): SagaAction[] {
  const { saga, run, now } = o;
  const generation = saga.metadata.generation ?? 1;
  const finalizer = hasFinalizer(saga);
  const deleting = saga.metadata.deletionTimestamp !== undefined;

  if (run) {
    const actions = mirror(saga, run, o.history ?? [], generation, now);
    if (isTerminalPhase(run.phase)) return finalizer ? [...actions, { type: 'removeFinalizer' }] : actions;
    if (deleting) {
      if (finalizer && (run.phase === 'Pending' || run.phase === 'Running') && !o.cancelSent) {
        actions.push(
          { type: 'event', event: { key: 'cancel', type: 'Warning', reason: 'Cancelling', note: `the Saga is being deleted: cancelling run ${run.runId}, which compensates what it did` } },
          { type: 'cancel', runId: run.runId },
        );
      }
      return actions;
    }
    // A run in flight keeps its Saga until it is compensated or done.
    return finalizer ? actions : [{ type: 'addFinalizer' }, ...actions];
  }

  // The engine has no run for this Saga.
  if (deleting) return finalizer ? [{ type: 'removeFinalizer' }] : [];
  // An input too large to send is refused here, as the engine would: retrying cannot help.
  const inputProblem = runInputProblem(saga.spec.input);
  const refused = o.startRefused ?? (inputProblem ? { code: 'invalid_request', message: inputProblem } : undefined);
  if (refused) {
    const message = `the engine refused to start the run: ${refused.message}`;
    const status = sagaStatusWithoutRun(saga.status, 'Failed', message, generation, now);
    return [
      ...(sameStatus(saga.status, status)
        ? []
        : [{ type: 'updateStatus' as const, status }, { type: 'event' as const, event: { key: 'refused', type: 'Warning' as const, reason: 'StartRefused', note: message } }]),
      ...(finalizer ? [{ type: 'removeFinalizer' as const }] : []),
    ];
  }
  // Ended before (or refused): a Saga never runs twice.
  if (saga.status?.phase && isTerminalPhase(saga.status.phase)) return finalizer ? [{ type: 'removeFinalizer' }] : [];

  const blocker = definitionBlocker(saga, o.definition);
  if (blocker) {
    const status = sagaStatusWithoutRun(saga.status, 'Pending', blocker, generation, now);
    return sameStatus(saga.status, status) ? [] : [{ type: 'updateStatus', status }];
  }
  const namespace = saga.metadata.namespace ?? 'default';
  const start: SagaAction = {
    type: 'start',
    request: {
      runId: saga.metadata.uid!,
      definitionKey: k8sDefinitionKey(namespace, saga.spec.definitionRef.name),
      // A run that existed once keeps its revision (the engine's start is idempotent by run id).
      revision: saga.status?.definitionRevision ?? o.definition!.status!.revision!,
      origin: 'k8s',
      input: saga.spec.input,
      ...(saga.spec.faults?.length ? { faults: saga.spec.faults } : {}),
    },
  };
  return finalizer ? [start] : [{ type: 'addFinalizer' }, start];
}

// ---- the SagaDefinition decision ----

const specValidator = validator(SagaDefinitionSpec, 'saga definition');

/** Everything wrong with a definition's spec (shape and semantics), as messages for its Ready condition. */
export function specProblems(spec: unknown): string[] {
  try {
    return definitionProblems(specValidator.parse(spec));
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => `${i.path || '/'}: ${i.message}`);
    throw err;
  }
}

function definitionStatus(def: SagaDefinitionObject, ready: boolean, reason: string, message: string, now: string, registered?: { key: string; revision: string }): SagaDefinitionStatus {
  const generation = def.metadata.generation ?? 1;
  const { key: _k, revision: _r, ...rest } = def.status ?? {};
  return {
    ...rest,
    ...(registered ? { key: registered.key, revision: registered.revision } : {}),
    conditions: setCondition(def.status?.conditions, { type: 'Ready', status: ready ? 'True' : 'False', reason, message, observedGeneration: generation }, now),
    observedGeneration: generation,
    stepCount: Array.isArray(def.spec?.steps) ? def.spec.steps.length : 0,
  };
}

function definitionUpdate(def: SagaDefinitionObject, status: SagaDefinitionStatus): DefinitionAction[] {
  if (sameStatus(def.status, status)) return [];
  const before = def.status?.conditions?.find((c) => c.type === 'Ready');
  const after = status.conditions!.find((c) => c.type === 'Ready')!;
  const changed = before?.status !== after.status || before.reason !== after.reason || def.status?.revision !== status.revision;
  const event: EventSpec = {
    key: `ready.${after.status}.${after.reason}.${status.revision ?? ''}.${status.observedGeneration}`,
    type: after.status === 'True' ? 'Normal' : 'Warning',
    reason: after.reason,
    note: after.message,
  };
  return [{ type: 'updateStatus', status }, ...(changed ? [{ type: 'event' as const, event }] : [])];
}

/**
 * Registers the definition with the engine on every reconcile (define is idempotent, keyed by the
 * spec's hash), so an engine that lost its definitions gets them back at the next resync.
 */
export function decideDefinition(o: DefinitionObservation): DefinitionAction[] {
  const def = o.definition;
  if (def.metadata.deletionTimestamp !== undefined) return [];
  const problems = specProblems(def.spec);
  if (problems.length > 0) return definitionUpdate(def, definitionStatus(def, false, 'Invalid', problems.join('; '), o.now));
  if (!o.registered) {
    return [{ type: 'define', request: { key: k8sDefinitionKey(def.metadata.namespace ?? 'default', def.metadata.name!), spec: def.spec } }];
  }
  if ('refused' in o.registered) {
    const r = o.registered.refused;
    return definitionUpdate(def, definitionStatus(def, false, 'Invalid', `the engine refused the definition: ${r.message}`, o.now));
  }
  const { key, revision } = o.registered;
  return definitionUpdate(def, definitionStatus(def, true, 'Registered', `registered with the engine as ${key}, revision ${revision}`, o.now, { key, revision }));
}
