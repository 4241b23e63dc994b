/** Test helpers: a tiny fake saga engine on core NATS, stream readers, an HTTP helper. */
import { randomUUID } from 'node:crypto';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  ENGINE_QUEUE_GROUP, SagaEndSubjects, Subjects, ceType, definitionRevision,
  type DefineRequest, type RunRef, type RunView, type SagaDefinitionSpec, type SagaEventName, type StartRequest,
} from '@sagamesh/contracts';
import { publishEvent } from '@sagamesh/runtime';
import type { OrderBooks } from '../src/projection.ts';

/**
 * Answers `saga.engine.define` / `start` / `get` with the contracts' shapes, idempotent by run id like the
 * real engine; records what it was asked. `down()` stops answering (no responders), `up()` resumes.
 */
export class FakeEngine {
  readonly runs = new Map<string, { request: StartRequest; view: RunView }>();
  readonly startRequests: StartRequest[] = [];
  /** Run ids asked for with `get`. */
  readonly getRequests: string[] = [];
  readonly definitions = new Map<string, { spec: SagaDefinitionSpec; revision: string }>();
  #subs: Subscription[] = [];
  readonly #nc: NatsConnection;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  up(): void {
    if (this.#subs.length > 0) return;
    const reply = (fn: (body: unknown) => unknown) => (_err: unknown, msg: { data: Uint8Array; respond(d: string): boolean }) => {
      msg.respond(JSON.stringify(fn(JSON.parse(new TextDecoder().decode(msg.data)))));
    };
    this.#subs = [
      this.#nc.subscribe(Subjects.engine('define'), {
        queue: ENGINE_QUEUE_GROUP,
        callback: reply((body) => {
          const req = body as DefineRequest;
          const revision = definitionRevision(req.spec);
          this.definitions.set(req.key, { spec: req.spec, revision });
          return { key: req.key, revision };
        }),
      }),
      this.#nc.subscribe(Subjects.engine('start'), {
        queue: ENGINE_QUEUE_GROUP,
        callback: reply((body) => {
          const req = body as StartRequest;
          this.startRequests.push(req);
          const def = this.definitions.get(req.definitionKey);
          if (!def) return { error: { code: 'unknown_definition', message: `no definition ${req.definitionKey}` } };
          if (def.revision !== req.revision) return { error: { code: 'revision_mismatch', message: `revision ${req.revision} is not ${def.revision}` } };
          const existing = this.runs.get(req.runId);
          if (existing) return { run: existing.view, created: false };
          const view: RunView = {
            runId: req.runId,
            definitionKey: req.definitionKey,
            revision: req.revision,
            origin: req.origin,
            phase: 'Running',
            steps: def.spec.steps.map((s) => ({ name: s.name, status: 'Pending', attempts: 0, compensationAttempts: 0 })),
            startedAt: new Date().toISOString(),
            version: 1,
          };
          this.runs.set(req.runId, { request: req, view });
          return { run: view, created: true };
        }),
      }),
      this.#nc.subscribe(Subjects.engine('get'), {
        queue: ENGINE_QUEUE_GROUP,
        callback: reply((body) => {
          const { runId } = body as RunRef;
          this.getRequests.push(runId);
          const run = this.runs.get(runId);
          return run ? { run: run.view } : { error: { code: 'not_found', message: `no run ${runId}` } };
        }),
      }),
    ];
  }

  async down(): Promise<void> {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs = [];
    await this.#nc.flush();
  }

  /** Ends the run in the engine's own records only, publishing nothing (as when its end event is lost on the way). */
  finish(runId: string, event: Extract<SagaEventName, 'succeeded' | 'compensated' | 'failed'>, error?: { code: string; message: string }): RunView {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`fake engine: no run ${runId}`);
    const phase = ({ succeeded: 'Succeeded', compensated: 'Compensated', failed: 'Failed' } as const)[event];
    const view: RunView = { ...run.view, phase, endedAt: new Date().toISOString(), version: run.view.version + 1, ...(error ? { error } : {}) };
    this.runs.set(runId, { ...run, view });
    return view;
  }

  /** Ends the run and publishes its terminal saga event to SAGA_EVENTS, as the engine does (an order run's end is kept on its saga.ended subject only). */
  async end(js: JetStreamClient, runId: string, event: Extract<SagaEventName, 'succeeded' | 'compensated' | 'failed'>, error?: { code: string; message: string }): Promise<void> {
    const view = this.finish(runId, event, error);
    const ev = { type: ceType('saga', event), source: 'fake-engine', data: { event, run: view }, correlationId: runId, id: randomUUID() };
    await publishEvent(js, SagaEndSubjects.ended('order', runId), ev);
  }
}

/** Every message of a stream matching `filter`, read with an ordered consumer. */
export async function readAll(js: JetStreamClient, stream: string, filter: string): Promise<JsMsg[]> {
  const jsm = await js.jetstreamManager();
  const { state } = await jsm.streams.info(stream, { subjects_filter: filter });
  const out: JsMsg[] = [];
  if (Object.keys(state.subjects ?? {}).length === 0) return out;
  const consumer = await js.consumers.get(stream, { filter_subjects: [filter] });
  const iter = await consumer.consume();
  for await (const m of iter) {
    out.push(m);
    if (m.info.pending === 0) break;
  }
  await iter.close();
  return out;
}

export async function http(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The sum of two books (the tests add up views to check the books the service keeps). */
export function addBooks(a: OrderBooks, b: OrderBooks): OrderBooks {
  return {
    confirmed: { count: a.confirmed.count + b.confirmed.count, total: a.confirmed.total + b.confirmed.total },
    cancelled: { count: a.cancelled.count + b.cancelled.count },
    pending: { count: a.pending.count + b.pending.count },
    failed: { count: a.failed.count + b.failed.count },
  };
}
