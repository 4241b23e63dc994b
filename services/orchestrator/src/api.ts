import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  CeHeaders,
  ENGINE_QUEUE_GROUP,
  RunRef,
  runInputProblem,
  StartRequest,
  Subjects,
  ValidationError,
  validator,
  type EngineError,
  type EngineVerb,
  type GetResponse,
  type StartResponse,
} from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/runtime';
import { toRunView } from './core/view.ts';
import { EngineApiError, type DefinitionStore } from './definitions.ts';
import type { Engine } from './engine.ts';

const startValidator = validator(StartRequest, 'start request');
const refValidator = validator(RunRef, 'run reference');

function parse<T>(v: { parseOwned(x: unknown): T }, data: Uint8Array): T {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    throw new EngineApiError('invalid_request', `the request body is not JSON: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Freshly parsed, so nobody else holds it: the defaults may be filled in place (no structuredClone).
    return v.parseOwned(json);
  } catch (err) {
    if (err instanceof ValidationError) throw new EngineApiError('invalid_request', err.message, { cause: err });
    throw err;
  }
}

export interface EngineApi {
  stop(): Promise<void>;
}

/**
 * The engine API: request/reply on saga.engine.<verb> in queue group ENGINE_QUEUE_GROUP, JSON in and
 * out, errors as `{error:{code,message}}`. At most `concurrency` requests are handled at once.
 */
export function serveEngineApi(opts: { nc: NatsConnection; engine: Engine; definitions: DefinitionStore; log: Logger; concurrency: number }): EngineApi {
  const { nc, engine, definitions, log } = opts;
  const handlers: Record<EngineVerb, (m: Msg) => Promise<unknown>> = {
    define: (m) => definitions.define(JSON.parse(new TextDecoder().decode(m.data))),
    async start(m) {
      const req = parse(startValidator, m.data);
      const tooLarge = runInputProblem(req.input);
      if (tooLarge) throw new EngineApiError('invalid_request', tooLarge);
      const r = await engine.start(req, m.headers?.get(CeHeaders.id) || undefined);
      return { run: toRunView(r.run), created: r.created } satisfies StartResponse;
    },
    async cancel(m) {
      const { runId } = parse(refValidator, m.data);
      const r = await engine.cancel(runId);
      if (!r) throw new EngineApiError('not_found', `no run ${runId}`);
      return { run: toRunView(r.run) } satisfies GetResponse;
    },
    async get(m) {
      const { runId } = parse(refValidator, m.data);
      const run = await engine.get(runId);
      if (!run) throw new EngineApiError('not_found', `no run ${runId}`);
      return { run: toRunView(run) } satisfies GetResponse;
    },
  };

  let active = 0;
  const waiting: (() => void)[] = [];
  const inFlight = new Set<Promise<void>>();

  async function handle(verb: EngineVerb, m: Msg): Promise<void> {
    if (active >= opts.concurrency) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      let body: unknown;
      try {
        body = await handlers[verb](m);
      } catch (err) {
        const known = err instanceof EngineApiError ? err : err instanceof SyntaxError ? new EngineApiError('invalid_request', `the request body is not JSON: ${err.message}`) : undefined;
        if (!known) log.error({ err, verb }, 'engine request failed');
        body = { error: { code: known?.code ?? 'internal', message: known?.message ?? `internal error: ${(err as Error)?.message ?? String(err)}` } } satisfies EngineError;
      }
      if (m.reply) m.respond(JSON.stringify(body));
    } finally {
      active--;
      waiting.shift()?.();
    }
  }

  const subs: Subscription[] = (['define', 'start', 'cancel', 'get'] as const).map((verb) =>
    nc.subscribe(Subjects.engine(verb), {
      queue: ENGINE_QUEUE_GROUP,
      callback: (err, m) => {
        if (err) {
          log.error({ err, verb }, 'engine API subscription error');
          return;
        }
        const p = handle(verb, m).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    }),
  );

  return {
    async stop() {
      await Promise.all(subs.map((s) => s.drain()));
      await Promise.all(inFlight);
    },
  };
}
