import { headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  DefineResponse,
  EngineError,
  GetResponse,
  StartResponse,
  Subjects,
  validator,
  type DefineRequest,
  type EngineErrorCode,
  type EngineVerb,
  type RunRef,
  type StartRequest,
} from '@sagamesh/contracts';
import { injectTrace, type RequestMux } from '@sagamesh/runtime';

/** The engine answered with `{error:{code,message}}`. */
export class EngineRequestError extends Error {
  readonly code: EngineErrorCode;
  readonly verb: EngineVerb;
  constructor(verb: EngineVerb, code: EngineErrorCode, message: string) {
    super(`saga engine ${verb}: ${code}: ${message}`);
    this.name = 'EngineRequestError';
    this.code = code;
    this.verb = verb;
  }
}

/** The engine could not be asked (no responders, timeout, connection closed) or answered nonsense; retrying may help. */
export class EngineUnavailableError extends Error {
  readonly verb: EngineVerb;
  constructor(verb: EngineVerb, message: string, options?: ErrorOptions) {
    super(`saga engine ${verb}: ${message}`, options);
    this.name = 'EngineUnavailableError';
    this.verb = verb;
  }
}

const engineError = validator(EngineError, 'engine error reply');
// cancel answers like get: one compiled check serves both.
const runReply = validator(GetResponse, 'run reply');
const responses = {
  define: validator(DefineResponse, 'define reply'),
  start: validator(StartResponse, 'start reply'),
  cancel: runReply,
  get: runReply,
};

/**
 * The saga engine's API over NATS request/reply (`saga.engine.<verb>`). Used by orders and the operator.
 * Start is idempotent by run id, so a caller may retry it after an EngineUnavailableError.
 */
export class EngineClient {
  readonly #send: (subject: string, body: string, opts: { timeout: number; headers: ReturnType<typeof headers> }) => Promise<Msg>;
  readonly #timeoutMs: number;

  /** `mux`: send the requests through it (cheaper per request than nc.request, for a busy caller). */
  constructor(nc: NatsConnection, opts: { timeoutMs?: number; mux?: Pick<RequestMux, 'request'> } = {}) {
    const mux = opts.mux;
    this.#send = mux ? (subject, body, o) => mux.request(subject, body, o) : (subject, body, o) => nc.request(subject, body, o);
    this.#timeoutMs = opts.timeoutMs ?? 5000;
  }

  define(req: DefineRequest): Promise<DefineResponse> {
    return this.#request('define', req);
  }

  /** Starts a run, or returns the existing one (created=false). */
  start(req: StartRequest): Promise<StartResponse> {
    return this.#request('start', req);
  }

  /** Compensates what the run has done; returns the run as it is then. */
  cancel(req: RunRef): Promise<GetResponse> {
    return this.#request('cancel', req);
  }

  get(req: RunRef): Promise<GetResponse> {
    return this.#request('get', req);
  }

  async #request<V extends EngineVerb>(verb: V, body: unknown): Promise<ReturnType<(typeof responses)[V]['parse']>> {
    const h = headers();
    injectTrace(h);
    let text: string;
    try {
      const m = await this.#send(Subjects.engine(verb), JSON.stringify(body), { timeout: this.#timeoutMs, headers: h });
      text = m.string();
    } catch (err) {
      throw new EngineUnavailableError(verb, (err as Error)?.message ?? String(err), { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new EngineUnavailableError(verb, `reply is not JSON: ${text.slice(0, 200)}`, { cause: err });
    }
    if (engineError.check(json)) throw new EngineRequestError(verb, json.error.code, json.error.message);
    if (!responses[verb].check(json)) {
      throw new EngineUnavailableError(verb, `unexpected reply: ${text.slice(0, 200)}`);
    }
    return json as ReturnType<(typeof responses)[V]['parse']>;
  }
}
