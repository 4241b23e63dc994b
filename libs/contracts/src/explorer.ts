/**
 * The saga explorer's HTTP contract: what the gateway serves under /ui/ and the API the page calls. Types only
 * besides the paths (the gateway produces these shapes; the page, in ui/, reads them): no schema library reaches
 * the browser bundle.
 */
import type { OrderView } from './api.ts';
import type { RunOrigin } from './messaging.ts';
import type { RunView, SagaEventName, SagaPhase, StepError } from './saga.ts';

export const ExplorerPaths = {
  /** The page and its assets (no auth: they hold no data; every call the page makes sends the API key). */
  ui: '/ui/',
  /** Who the key is: `SessionView`. */
  session: '/api/session',
  /** One run with its timeline: `SagaDetail`. */
  saga: (runId: string) => `/api/sagas/${encodeURIComponent(runId)}`,
  /** Server-sent events of the run list (admin keys): `snapshot`, then `runs`. */
  stream: '/admin/sagas/stream',
  deadLetters: '/admin/dead-letters',
  replay: (seq: number) => `/admin/dead-letters/${seq}/replay`,
} as const;

/** The names of the stream's events. */
export const ExplorerEvents = {
  /** Every run the gateway holds (`RunSnapshot`): the first event, and again whenever the client fell too far behind. */
  snapshot: 'snapshot',
  /** Runs that changed since the last event, each at its latest version (`RunDelta`). */
  runs: 'runs',
} as const;

/** A row of the live list: what it shows and filters on. */
export interface RunSummary {
  runId: string;
  origin: RunOrigin;
  definitionKey: string;
  phase: SagaPhase;
  currentStep?: string;
  startedAt: string;
  endedAt?: string;
  error?: StepError;
  version: number;
}

export function runSummaryOf(run: RunView): RunSummary {
  const s: RunSummary = { runId: run.runId, origin: run.origin, definitionKey: run.definitionKey, phase: run.phase, startedAt: run.startedAt, version: run.version };
  if (run.currentStep !== undefined) s.currentStep = run.currentStep;
  if (run.endedAt !== undefined) s.endedAt = run.endedAt;
  if (run.error !== undefined) s.error = run.error;
  return s;
}

export interface RunSnapshot {
  runs: RunSummary[];
  /** The most runs the gateway holds: older ones leave the list. */
  capacity: number;
}
export interface RunDelta {
  runs: RunSummary[];
}

/** One progress event of a run as the gateway saw it go by. */
export interface RunEventRecord {
  event: SagaEventName;
  step?: string;
  message?: string;
  /** When it was published: the stream's time for a kept event read back, else when the gateway received it. */
  at: string;
  version: number;
}

export interface SagaDetail {
  run: RunView;
  /** The progress events seen, oldest first. */
  events: RunEventRecord[];
  /**
   * Whether `events` holds every event of the run: only for runs the gateway watched from their start (the stream
   * keeps each run's latest event only).
   */
  eventsComplete: boolean;
  /** The order an `order` run belongs to: its lines and total are the run's input. */
  order?: OrderView;
  /** Absent when the engine could not be asked: `run` is then the gateway's last view. */
  degraded?: 'engine'[];
  /** The run's trace in a trace UI, when the gateway has TRACE_URL_TEMPLATE and the run a trace id. */
  traceUrl?: string;
}

export interface SessionView {
  role: 'admin' | 'customer';
  /** A prefix of the key's hash, safe to show. */
  id: string;
  /** Whether /admin/faults is on in this deployment. */
  faultInjection: boolean;
}

export interface DeadLetterView {
  seq: number;
  /** The subject the message died on. */
  subject: string;
  reason: string;
  stream: string;
  consumer: string;
  time: string;
  bytes: number;
}
