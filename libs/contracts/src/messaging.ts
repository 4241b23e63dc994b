import type { ParticipantName } from './ports.ts';

/** Every NATS subject sagamesh uses. Nobody retypes these strings. */
export const Subjects = {
  /** Commands to a participant: `cmd.<service>.<command>`. */
  command: (service: string, command: string) => `cmd.${service}.${command}`,
  commandsOf: (service: ParticipantName | string) => `cmd.${service}.>`,
  allCommands: 'cmd.>',

  /** Participants' replies to the saga engine: `saga.replies.<runId>`. */
  reply: (runId: string) => `saga.replies.${runId}`,
  allReplies: 'saga.replies.>',

  /**
   * Run progress: `saga.events.<origin>.<runId>`, so the operator reads only its own runs. Only the origins in
   * DurableProgressOrigins have theirs kept in SAGA_EVENTS; the others' progress is a live signal (see there).
   */
  sagaEvent: (origin: RunOrigin, runId: string) => `saga.events.${origin}.${runId}`,
  sagaEventsOf: (origin: RunOrigin) => `saga.events.${origin}.>`,
  allSagaEvents: 'saga.events.>',

  /** Engine API, request/reply with a queue group: `saga.engine.<verb>`. */
  engine: (verb: EngineVerb) => `saga.engine.${verb}`,

  /** The orders event store: one subject per order, for optimistic concurrency. */
  orderStream: (orderId: string) => `orders.${orderId}`,
  allOrderStream: 'orders.>',

  /** Public domain events: `events.<aggregate>.<type>`. */
  domainEvent: (aggregate: string, type: string) => `events.${aggregate}.${type}`,
  allDomainEvents: 'events.>',

  /** Where poison messages end: `dlq.<original subject>`. */
  deadLetter: (originalSubject: string) => `dlq.${originalSubject}`,
  allDeadLetters: 'dlq.>',
} as const;

/**
 * A run's end (succeeded, compensated, failed) is published twice by the engine: on
 * `saga.events.<origin>.<runId>` with the other progress events, and on `saga.ended.<origin>.<runId>`
 * (stream SAGA_EVENTS too), the same message under de-dup id `<event msg id>.ended`. Readers that
 * act only on ends (orders, inventory) consume the second subject, and so do not receive (and ack)
 * the several progress events of every run.
 */
export const SagaEndSubjects = {
  ended: (origin: RunOrigin, runId: string) => `saga.ended.${origin}.${runId}`,
  endedOf: (origin: RunOrigin) => `saga.ended.${origin}.>`,
  allEnded: 'saga.ended.>',
} as const;

export type RunOrigin = 'order' | 'k8s';
export const RunOrigins: readonly RunOrigin[] = ['order', 'k8s'];

/**
 * The origins whose progress events are kept in SAGA_EVENTS and published with an ack: the operator reconciles k8s
 * runs from them. Nobody consumes the progress of the other origins durably (orders and inventory act on ends, which
 * are always kept, on saga.ended): it goes out as plain NATS messages, at most once, for live watchers (the saga
 * explorer). That spares the server a stored, acked write per step of every order saga.
 */
export const DurableProgressOrigins: readonly RunOrigin[] = ['k8s'];
export const isProgressDurable = (origin: RunOrigin): boolean => DurableProgressOrigins.includes(origin);
export type EngineVerb = 'define' | 'start' | 'cancel' | 'get';
export const ENGINE_QUEUE_GROUP = 'saga-engine';

/** JetStream streams, declared in code and created idempotently at start-up. */
export const Streams = {
  commands: { name: 'COMMANDS', subjects: [Subjects.allCommands] },
  replies: { name: 'SAGA_REPLIES', subjects: [Subjects.allReplies] },
  /** The progress events of DurableProgressOrigins' runs, and every run's end on `saga.ended.<origin>.<runId>` (see SagaEndSubjects). */
  sagaEvents: { name: 'SAGA_EVENTS', subjects: [...DurableProgressOrigins.map(Subjects.sagaEventsOf), SagaEndSubjects.allEnded] },
  orders: { name: 'ORDERS', subjects: [Subjects.allOrderStream] },
  domainEvents: { name: 'EVENTS', subjects: [Subjects.allDomainEvents] },
  deadLetters: { name: 'DEAD_LETTERS', subjects: [Subjects.allDeadLetters] },
} as const;

/** Durable consumer names. */
export const Consumers = {
  participant: (service: ParticipantName | string) => `${service}-commands`,
  engineReplies: 'orchestrator-replies',
  ordersSagaEvents: 'orders-saga-events',
  ordersProjector: 'orders-projector',
  inventorySagaEvents: 'inventory-saga-events',
  notifications: 'notifications',
  operatorSagaEvents: 'operator-saga-events',
} as const;

/** JetStream KV buckets. Keys use [-_.A-Za-z0-9] ('.' as separator). */
export const Buckets = {
  sagaRuns: 'saga-runs',
  sagaDefinitions: 'saga-definitions',
  faults: 'faults',
  idempotency: 'gateway-idempotency',
  orderView: 'orders-view',
  inventory: 'inventory',
  payments: 'payments',
  shipping: 'shipping',
  notifications: 'notifications',
} as const;

/** Consumers redeliver at most this many times; the last delivery dead-letters the message. */
export const MAX_DELIVER = 6;
/** Idempotency keys at the gateway live this long. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** JetStream publish de-dup window. */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

/** CloudEvents binary mode: attribute header names. */
export const CeHeaders = {
  id: 'ce-id',
  type: 'ce-type',
  source: 'ce-source',
  specversion: 'ce-specversion',
  time: 'ce-time',
  correlationId: 'ce-correlationid',
  causationId: 'ce-causationid',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Dead letters carry why they died. */
  deadLetterReason: 'sagamesh-dead-letter-reason',
  deadLetterStream: 'sagamesh-dead-letter-stream',
  deadLetterConsumer: 'sagamesh-dead-letter-consumer',
} as const;
export const CE_SPEC_VERSION = '1.0';

/** `sagamesh.<area>.<name>.v<version>` */
export function ceType(area: string, name: string, version = 1): string {
  return `sagamesh.${area}.${name}.v${version}`;
}
/** Parses a ce-type into its parts; undefined when it is not a sagamesh type. */
export function parseCeType(type: string): { area: string; name: string; version: number } | undefined {
  const m = /^sagamesh\.([a-z0-9_-]+)\.([a-z0-9_.-]+)\.v(\d+)$/.exec(type);
  if (!m) return undefined;
  return { area: m[1]!, name: m[2]!, version: Number(m[3]) };
}
