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
  canonicalJson,
  definitionProblems,
  isTerminalPhase,
  k8sDefinitionKey,
  validator,
  type Condition,
  type DefineRequest,
  type RunView,
  type SagaDefinitionObject,
  type SagaDefinitionStatus,
  type SagaObject,
  type SagaPhase,
  type SagaStatus,
  type SagaStepStatus,
  type StartRequest,
  type StepState,
  type StepStatus,
} from '@sagamesh/contracts';

/** A Kubernetes Event to record about the object; `key` identifies the transition (same key = same event). */
export interface EventSpec {
  key: string;
  type: 'Normal' | 'Warning';
  reason: string;
  note: string;
}

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

// ---- conditions ----

/** Sets one condition (metav1 semantics: lastTransitionTime moves only when the status changes). */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: { type: string; status: Condition['status']; reason: string; message: string; observedGeneration: number },
  now: string,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const updated: Condition = { ...next, lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now };
  if (i >= 0) list[i] = updated;
  else list.push(updated);
  return list;
}

/** `Completed` (True in every terminal phase) and `Succeeded`; both with reason = the phase. */
export function sagaConditions(prev: readonly Condition[] | undefined, phase: SagaPhase, message: string, generation: number, now: string): Condition[] {
  const terminal = isTerminalPhase(phase);
  let conditions = setCondition(prev, { type: 'Completed', status: terminal ? 'True' : 'False', reason: phase, message, observedGeneration: generation }, now);
  const succeeded = phase === 'Succeeded' ? 'True' : terminal ? 'False' : 'Unknown';
  conditions = setCondition(conditions, { type: 'Succeeded', status: succeeded, reason: phase, message, observedGeneration: generation }, now);
  return conditions;
}

// ---- Saga status from the engine's run ----

function stepStatus(s: StepState): SagaStepStatus {
  return {
    name: s.name,
    status: s.status,
    attempts: s.attempts,
    compensationAttempts: s.compensationAttempts,
    ...(s.startedAt ? { startedAt: s.startedAt } : {}),
    ...(s.endedAt ? { endedAt: s.endedAt } : {}),
    ...(s.compensatedAt ? { compensatedAt: s.compensatedAt } : {}),
    ...(s.error ? { error: { code: s.error.code, message: s.error.message } } : {}),
  };
}

function runMessage(run: RunView): string {
  const because = run.error ? `, because ${run.error.code === 'cancelled' ? 'the run was cancelled' : run.error.message}` : '';
  switch (run.phase) {
    case 'Pending':
      return 'waiting for the engine to start the run';
    case 'Running':
      return `running step ${run.currentStep ?? '(none)'}`;
    case 'Compensating':
      return `compensating step ${run.currentStep ?? '(none)'}${because}`;
    case 'Succeeded':
      return `all ${run.steps.length} steps succeeded`;
    case 'Compensated':
      return `compensated${because}`;
    case 'Failed':
      return `a compensation gave up, a person must look${run.error ? `: ${run.error.message}` : ''}`;
  }
}

/** The status that mirrors a run. */
export function sagaStatusFromRun(prev: SagaStatus | undefined, run: RunView, generation: number, now: string): SagaStatus {
  const message = runMessage(run);
  return {
    phase: run.phase,
    ...(run.currentStep !== undefined ? { currentStep: run.currentStep } : {}),
    steps: run.steps.map(stepStatus),
    conditions: sagaConditions(prev?.conditions, run.phase, message, generation, now),
    observedGeneration: generation,
    runId: run.runId,
    definitionRevision: run.revision,
    ...(run.traceId ? { traceId: run.traceId } : {}),
    startedAt: run.startedAt,
    ...(run.endedAt ? { endedAt: run.endedAt } : {}),
    message,
  };
}

/** A status for a Saga that has no run (yet, or ever). */
function sagaStatusWithoutRun(prev: SagaStatus | undefined, phase: SagaPhase, message: string, generation: number, now: string): SagaStatus {
  const { currentStep: _c, ...rest } = prev ?? {};
  return { ...rest, phase, conditions: sagaConditions(prev?.conditions, phase, message, generation, now), observedGeneration: generation, message };
}

export function sameStatus(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? {}) === canonicalJson(b ?? {});
}

// ---- Events: one per transition a status change reveals ----

/** The transitions a run passes through to reach a phase (so a skipped observation still gets its events). */
const phasePath: Record<SagaPhase, SagaPhase[]> = {
  Pending: [],
  Running: ['Running'],
  Succeeded: ['Running', 'Succeeded'],
  Compensating: ['Running', 'Compensating'],
  Compensated: ['Running', 'Compensating', 'Compensated'],
  Failed: ['Running', 'Compensating', 'Failed'],
};
const stepPath: Record<StepStatus, StepStatus[]> = {
  Pending: [],
  Running: ['Running'],
  Succeeded: ['Running', 'Succeeded'],
  Failed: ['Running', 'Failed'],
  TimedOut: ['Running', 'TimedOut'],
  Compensating: ['Running', 'Compensating'],
  Compensated: ['Running', 'Compensating', 'Compensated'],
  CompensationFailed: ['Running', 'Compensating', 'CompensationFailed'],
  Skipped: ['Skipped'],
};
const phaseReason: Record<SagaPhase, string> = {
  Pending: 'Pending',
  Running: 'Started',
  Compensating: 'Compensating',
  Succeeded: 'Succeeded',
  Compensated: 'Compensated',
  Failed: 'Failed',
};
const warningPhases: readonly SagaPhase[] = ['Compensating', 'Compensated', 'Failed'];
const warningSteps: readonly StepStatus[] = ['Failed', 'TimedOut', 'CompensationFailed'];
const stepVerb: Record<StepStatus, string> = {
  Pending: 'is pending',
  Running: 'started',
  Succeeded: 'succeeded',
  Failed: 'failed',
  TimedOut: 'timed out',
  Compensating: 'is being compensated',
  Compensated: 'was compensated',
  CompensationFailed: 'could not be compensated',
  Skipped: 'was skipped',
};

function stepEvent(step: SagaStepStatus, status: StepStatus): EventSpec {
  const compensation = status.startsWith('Compensat');
  const attempt = compensation ? step.compensationAttempts : step.attempts;
  const error = step.error && (status === 'Failed' || status === 'TimedOut' || status === 'CompensationFailed') ? `: ${step.error.code}: ${step.error.message}` : '';
  return {
    // Same transition, same key, whenever it is observed: so an Event is recorded once.
    key: `step.${step.name}.${status}.${compensation ? 'c' : ''}${attempt}`,
    type: warningSteps.includes(status) ? 'Warning' : 'Normal',
    reason: `Step${status}`,
    note: `step ${step.name} ${stepVerb[status]}${status === 'Skipped' ? '' : ` (attempt ${attempt})`}${error}`,
  };
}

/** The Events for what changed between two statuses of the same run, in the order it happened. */
export function transitionEvents(prev: SagaStatus | undefined, next: SagaStatus): EventSpec[] {
  const before = new Set(prev?.phase ? phasePath[prev.phase] : []);
  const newPhases = next.phase ? phasePath[next.phase].filter((p) => !before.has(p)) : [];
  const phaseEvent = (p: SagaPhase): EventSpec => ({
    key: `phase.${p}`,
    type: warningPhases.includes(p) ? 'Warning' : 'Normal',
    reason: phaseReason[p],
    note:
      p === 'Running'
        ? `run ${next.runId} started (definition revision ${next.definitionRevision})`
        : p === next.phase && next.message
          ? next.message
          : `the saga is ${p.toLowerCase()}`,
  });
  // Steps run forward and are compensated backward: one observation may reveal both.
  const forward: EventSpec[] = [];
  const backward: EventSpec[][] = [];
  for (const step of next.steps ?? []) {
    const old = prev?.steps?.find((s) => s.name === step.name);
    const seen = new Set(old ? stepPath[old.status] : []);
    const undo: EventSpec[] = [];
    if (old && step.attempts > old.attempts && step.attempts > 1) {
      forward.push({ key: `step.${step.name}.Retried.${step.attempts}`, type: 'Normal', reason: 'StepRetried', note: `step ${step.name} retried (attempt ${step.attempts})` });
    }
    if (old && step.compensationAttempts > old.compensationAttempts && step.compensationAttempts > 1) {
      undo.push({
        key: `step.${step.name}.CompensationRetried.${step.compensationAttempts}`,
        type: 'Normal',
        reason: 'StepCompensationRetried',
        note: `compensation of step ${step.name} retried (attempt ${step.compensationAttempts})`,
      });
    }
    // A new attempt walks the path again (a retry can time out a second time); its start is StepRetried.
    const retried = old !== undefined && old.attempts > 0 && step.attempts > old.attempts;
    for (const s of stepPath[step.status]) {
      if (retried ? s === 'Running' : seen.has(s)) continue;
      (s.startsWith('Compensat') ? undo : forward).push(stepEvent(step, s));
    }
    backward.unshift(undo);
  }
  const at = (p: SagaPhase) => (newPhases.includes(p) ? [phaseEvent(p)] : []);
  return [
    ...at('Running'),
    ...forward,
    ...at('Compensating'),
    ...backward.flat(),
    ...newPhases.filter((p) => p !== 'Running' && p !== 'Compensating').map(phaseEvent),
  ];
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
  if (o.startRefused) {
    const message = `the engine refused to start the run: ${o.startRefused.message}`;
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
