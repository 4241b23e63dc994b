import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration.ts';
import { Fault } from './faults.ts';
import { ID_PATTERN } from './ids.ts';

/** What each participant offers: the only (service, command) pairs a step may name. */
export const ParticipantCommands = {
  inventory: ['reserve', 'release'],
  payments: ['charge', 'refund'],
  shipping: ['create', 'cancel'],
} as const;

const Duration = (description: string, dflt?: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, ...(dflt ? { default: dflt } : {}) });

export const StepTarget = Type.Object(
  {
    service: Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$', description: 'The participant that handles the command, e.g. payments.' }),
    command: Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$', description: 'The command, e.g. charge.' }),
  },
  { additionalProperties: false },
);
export type StepTarget = Static<typeof StepTarget>;

export const Backoff = Type.Object(
  {
    initial: Duration('First delay between attempts.', '100ms'),
    max: Duration('Cap on the delay between attempts.', '5s'),
    multiplier: Type.Number({ minimum: 1, maximum: 10, default: 2, description: 'Each delay is the previous one times this.' }),
  },
  { additionalProperties: false },
);
export type Backoff = Static<typeof Backoff>;

export const RetryPolicy = Type.Object(
  {
    attempts: Type.Integer({ minimum: 1, maximum: 20, default: 3, description: 'Total attempts of a step that times out (1 = no retry).' }),
    backoff: Type.Optional(Backoff),
  },
  { additionalProperties: false },
);
export type RetryPolicy = Static<typeof RetryPolicy>;

/**
 * Compensation keeps trying: an undo that cannot happen leaves money or stock stranded, so the horizon is long
 * (hours) and the attempt cap optional. Past it the run gives up on that step, still compensates the others, and ends Failed.
 */
export const CompensationRetryPolicy = Type.Object(
  {
    giveUpAfter: Type.Optional(Duration('How long one step\'s compensation is retried, from its first attempt, before the run gives up on it.', '6h')),
    attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Optional cap on the attempts of one compensation (absent = giveUpAfter alone).' })),
    backoff: Type.Optional(Backoff),
  },
  { additionalProperties: false },
);
export type CompensationRetryPolicy = Static<typeof CompensationRetryPolicy>;

export const SagaStep = Type.Object(
  {
    name: Type.String({ pattern: ID_PATTERN, description: 'Unique step name, [A-Za-z0-9_-].' }),
    action: StepTarget,
    compensation: Type.Optional(StepTarget),
    timeout: Type.Optional(Duration('How long one attempt may take before it is retried (outcome unknown).', '5s')),
    retry: Type.Optional(RetryPolicy),
  },
  { additionalProperties: false },
);
export type SagaStep = Static<typeof SagaStep>;

/** The spec of a saga definition: the engine's input and the SagaDefinition CRD's spec. */
export const SagaDefinitionSpec = Type.Object(
  {
    steps: Type.Array(SagaStep, { minItems: 1, maxItems: 32 }),
    deadline: Type.Optional(Duration('Overall deadline of a run; past it the run compensates.', '60s')),
    compensationRetry: Type.Optional(CompensationRetryPolicy),
  },
  { additionalProperties: false },
);
export type SagaDefinitionSpec = Static<typeof SagaDefinitionSpec>;

/** Defaults applied when a field is absent. */
export const SagaDefaults = {
  stepTimeout: '5s',
  deadline: '60s',
  retry: { attempts: 3, backoff: { initial: '100ms', max: '5s', multiplier: 2 } },
  compensationRetry: { giveUpAfter: '6h', backoff: { initial: '100ms', max: '30s', multiplier: 2 } },
} as const;

/** Money is integer cents, at most this per order or charge: sums over millions of orders stay exact in a double. */
/** How long a run record is kept after its last change, by default (the orchestrator's RUNS_TTL_MS). */
export const DEFAULT_RUNS_TTL_MS = 7 * 24 * 3600 * 1000;
export const MAX_AMOUNT_CENTS = 1_000_000_000;

/** A run's input at most, in bytes of JSON: it rides in every step command, and NATS caps a message at 1 MiB. */
export const MAX_RUN_INPUT_BYTES = 64 * 1024;

/** Why a run's input cannot be accepted (too large), or undefined. */
export function runInputProblem(input: unknown): string | undefined {
  const bytes = new TextEncoder().encode(JSON.stringify(input ?? {})).length;
  return bytes > MAX_RUN_INPUT_BYTES ? `input is ${bytes} bytes of JSON; at most ${MAX_RUN_INPUT_BYTES} (it rides in every step command): keep large data elsewhere and pass a reference` : undefined;
}

/** Input of an order-fulfillment run, and of runs started from Saga resources that use the same steps. */
export const SagaItem = Type.Object(
  {
    sku: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    quantity: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false },
);
export const SagaInput = Type.Object(
  {
    customerId: Type.String({ minLength: 1, maxLength: 128 }),
    items: Type.Array(SagaItem, { minItems: 1, maxItems: 50 }),
    amountCents: Type.Integer({ minimum: 0, maximum: MAX_AMOUNT_CENTS, description: 'What payments charges, in cents.' }),
  },
  { additionalProperties: true },
);
export type SagaInput = Static<typeof SagaInput>;

export const ORDER_FULFILLMENT = 'order-fulfillment';

/** The built-in order saga: reserve → charge → ship; notifying is choreography, not a step. */
export const orderFulfillmentDefinition: SagaDefinitionSpec = {
  steps: [
    { name: 'reserve-inventory', action: { service: 'inventory', command: 'reserve' }, compensation: { service: 'inventory', command: 'release' }, timeout: '2s', retry: { attempts: 3, backoff: { initial: '100ms', max: '1s', multiplier: 2 } } },
    { name: 'charge-payment', action: { service: 'payments', command: 'charge' }, compensation: { service: 'payments', command: 'refund' }, timeout: '2s', retry: { attempts: 3, backoff: { initial: '100ms', max: '1s', multiplier: 2 } } },
    { name: 'create-shipment', action: { service: 'shipping', command: 'create' }, compensation: { service: 'shipping', command: 'cancel' }, timeout: '2s', retry: { attempts: 3, backoff: { initial: '100ms', max: '1s', multiplier: 2 } } },
  ],
  deadline: '60s',
  compensationRetry: { giveUpAfter: '6h', backoff: { initial: '100ms', max: '10s', multiplier: 2 } },
};

// ---- Run state (the engine's, read by orders, the gateway and the operator) ----

export const SagaPhases = ['Pending', 'Running', 'Compensating', 'Succeeded', 'Compensated', 'Failed'] as const;
export type SagaPhase = (typeof SagaPhases)[number];
export const TerminalPhases: readonly SagaPhase[] = ['Succeeded', 'Compensated', 'Failed'];
export const isTerminalPhase = (p: SagaPhase) => TerminalPhases.includes(p);

export const StepStatuses = [
  'Pending', 'Running', 'Succeeded', 'Failed', 'TimedOut',
  'Compensating', 'Compensated', 'CompensationFailed', 'Skipped',
] as const;
export type StepStatus = (typeof StepStatuses)[number];

export const StepError = Type.Object({ code: Type.String(), message: Type.String() });
export type StepError = Static<typeof StepError>;

export const StepState = Type.Object({
  name: Type.String(),
  status: Type.Union(StepStatuses.map((s) => Type.Literal(s))),
  attempts: Type.Integer({ minimum: 0 }),
  compensationAttempts: Type.Integer({ minimum: 0 }),
  /**
   * After a compensation attempt timed out: the attempt whose command is still the one out. Each retry sends it again
   * under that attempt's de-dup id, so while it waits in the queue (a participant away for minutes) the server drops
   * the copies instead of stacking one per retry for the participant to work through when it is back.
   */
  compensationResendOf: Type.Optional(Type.Integer({ minimum: 1 })),
  compensationStartedAt: Type.Optional(Type.String({ format: 'date-time' })),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  compensatedAt: Type.Optional(Type.String({ format: 'date-time' })),
  error: Type.Optional(StepError),
  output: Type.Optional(Type.Unknown()),
});
export type StepState = Static<typeof StepState>;

/** The public view of a run (engine `get`, saga events, operator status). */
export const RunView = Type.Object({
  runId: Type.String(),
  definitionKey: Type.String(),
  revision: Type.String(),
  origin: Type.Union([Type.Literal('order'), Type.Literal('k8s')]),
  phase: Type.Union(SagaPhases.map((p) => Type.Literal(p))),
  currentStep: Type.Optional(Type.String()),
  steps: Type.Array(StepState),
  startedAt: Type.String({ format: 'date-time' }),
  endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  error: Type.Optional(StepError),
  traceId: Type.Optional(Type.String()),
  /** Monotonic version of the run; consumers ignore views older than what they have. */
  version: Type.Integer({ minimum: 0 }),
});
export type RunView = Static<typeof RunView>;

// ---- Commands and replies between the engine and participants ----

export const StepCommand = Type.Object({
  runId: Type.String({ pattern: ID_PATTERN }),
  definitionKey: Type.String(),
  step: Type.String({ pattern: ID_PATTERN }),
  action: Type.Union([Type.Literal('do'), Type.Literal('compensate')]),
  attempt: Type.Integer({ minimum: 1 }),
  origin: Type.Union([Type.Literal('order'), Type.Literal('k8s')]),
  input: Type.Record(Type.String(), Type.Unknown()),
  faults: Type.Optional(Type.Array(Fault)),
});
export type StepCommand = Static<typeof StepCommand>;

export const StepReply = Type.Object({
  runId: Type.String({ pattern: ID_PATTERN }),
  step: Type.String({ pattern: ID_PATTERN }),
  action: Type.Union([Type.Literal('do'), Type.Literal('compensate')]),
  attempt: Type.Integer({ minimum: 1 }),
  outcome: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
  /** A business failure is final for an action; a compensation's failures are always retried. */
  error: Type.Optional(StepError),
  output: Type.Optional(Type.Unknown()),
});
export type StepReply = Static<typeof StepReply>;

// ---- Saga progress events: saga.events.<origin>.<runId>, ce-type sagamesh.saga.<name>.v1 ----

export const SagaEventNames = [
  'started', 'step_started', 'step_succeeded', 'step_failed', 'step_retried',
  'compensating', 'step_compensated', 'compensation_failed',
  'succeeded', 'compensated', 'failed',
] as const;
export type SagaEventName = (typeof SagaEventNames)[number];

const SagaEventName = Type.Union(SagaEventNames.map((n) => Type.Literal(n)));

/** One event of a transition, without the run view (see SagaEvent.more). */
export const SagaEventEntry = Type.Object({
  event: SagaEventName,
  step: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});
export type SagaEventEntry = Static<typeof SagaEventEntry>;

/**
 * A run's progress: the event, and the run's view right after the transition that caused it. A transition often
 * emits two events (a step's success and the next step's start). Where a run's progress is kept (isProgressDurable:
 * the operator's k8s runs) each is its own message; where it is a live signal only, one message carries the
 * transition's first event and its further ones, in order, in `more` (same run view, one message instead of two).
 */
export const SagaEvent = Type.Object({
  event: SagaEventName,
  step: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  more: Type.Optional(Type.Array(SagaEventEntry, { maxItems: 128 })),
  run: RunView,
});
export type SagaEvent = Static<typeof SagaEvent>;

/** Just the event of anything that carries one (a progress message, an outbox entry): its name, step and message. */
export const sagaEventEntryOf = (e: SagaEventEntry): SagaEventEntry => ({
  event: e.event,
  ...(e.step !== undefined ? { step: e.step } : {}),
  ...(e.message !== undefined ? { message: e.message } : {}),
});

/** Every event a progress message carries, in order: its own, then `more`. */
export const sagaEventEntries = (ev: SagaEvent): SagaEventEntry[] => [sagaEventEntryOf(ev), ...(ev.more ?? [])];

// ---- Engine API: request/reply on saga.engine.<verb> ----

export const DefineRequest = Type.Object({
  key: Type.String({ pattern: '^(builtin|k8s)(\\.[A-Za-z0-9_-]+){1,2}$' }),
  spec: SagaDefinitionSpec,
});
export type DefineRequest = Static<typeof DefineRequest>;
export const DefineResponse = Type.Object({ key: Type.String(), revision: Type.String() });
export type DefineResponse = Static<typeof DefineResponse>;

export const StartRequest = Type.Object({
  runId: Type.String({ pattern: ID_PATTERN }),
  definitionKey: Type.String(),
  revision: Type.String(),
  origin: Type.Union([Type.Literal('order'), Type.Literal('k8s')]),
  input: Type.Record(Type.String(), Type.Unknown()),
  faults: Type.Optional(Type.Array(Fault)),
  traceparent: Type.Optional(Type.String()),
});
export type StartRequest = Static<typeof StartRequest>;
export const StartResponse = Type.Object({ run: RunView, created: Type.Boolean() });
export type StartResponse = Static<typeof StartResponse>;

export const RunRef = Type.Object({ runId: Type.String({ pattern: ID_PATTERN }) });
export type RunRef = Static<typeof RunRef>;
export const GetResponse = Type.Object({ run: RunView });
export type GetResponse = Static<typeof GetResponse>;

/** Error reply of any engine verb: `{ "error": { code, message } }`. */
export const EngineErrorCodes = ['invalid_request', 'unknown_definition', 'revision_mismatch', 'not_found', 'conflict', 'internal'] as const;
export type EngineErrorCode = (typeof EngineErrorCodes)[number];
export const EngineError = Type.Object({
  error: Type.Object({ code: Type.Union(EngineErrorCodes.map((c) => Type.Literal(c))), message: Type.String() }),
});
export type EngineError = Static<typeof EngineError>;
