/**
 * The runtime of a saga participant (inventory, payments, shipping): consumes `cmd.<service>.>`,
 * validates each StepCommand, applies the effective fault, calls the command's handler with the
 * step's idempotency key, publishes the StepReply (de-dup id = key + attempt) and acks only after
 * that. Handlers keep their effects idempotent by key in their own KV bucket; `StepLedger` is that
 * bookkeeping for effects that fit in one record, `KvTally` sums a bucket's records for the books.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import type { Static, TSchema } from '@sinclair/typebox';
import {
  CeHeaders,
  Consumers,
  Streams,
  STEP_REPLY_TYPE,
  StepCommand,
  StepErrorCodes,
  Subjects,
  commandMsgId,
  effectiveFault,
  isValidId,
  stepCommandType,
  stepKey,
  validator,
  type RunOrigin,
  type StepError,
  type StepReply,
  type StepResult,
  type Validator,
  ValidationError,
} from '@sagamesh/contracts';
import { runConsumer, type ConsumerHandle, type HandlerContext, type HandlerResult } from './consumer.ts';
import { FaultStore, applyFault } from './faults.ts';
import type { Logger } from './logger.ts';
import { PoisonMessageError, decodeMessage, publishEvent, type Envelope } from './messages.ts';
import type { ServiceMetrics } from './metrics.ts';
import { kvWrite, type Publisher } from './publisher.ts';

// ---- Handlers ----

export interface StepContext<I = unknown> {
  command: StepCommand;
  /** `command.input`, checked against the handler's input schema. */
  input: I;
  /** This command's idempotency key: `<runId>.<step>` or `<runId>.<step>.compensate`. */
  key: string;
  /** The key of the step's action: what a compensation undoes. */
  actionKey: string;
  log: Logger;
}

/** A handler's answer: the result to reply, and whether this call changed state (false: replayed or refused). */
export interface Handled {
  result: StepResult;
  committed: boolean;
}

interface HandlerBase {
  input: Validator<TSchema>;
  handle(ctx: StepContext): Promise<Handled>;
}
export interface ActionHandler extends HandlerBase {
  role: 'action';
  /** Stores an injected failure as the action's result (a business failure, final), or returns the stored result. */
  fail(ctx: StepContext, error: StepError): Promise<Handled>;
}
export interface CompensationHandler extends HandlerBase {
  role: 'compensation';
}
export type CommandHandler = ActionHandler | CompensationHandler;

/** A command that does a step's action. `input` is checked first (failure → `invalid_input`). */
export function defineAction<S extends TSchema>(
  input: S,
  h: { handle(ctx: StepContext<Static<S>>): Promise<Handled>; fail(ctx: StepContext<Static<S>>, error: StepError): Promise<Handled> },
): ActionHandler {
  return { role: 'action', input: validator(input, 'command input'), handle: h.handle as ActionHandler['handle'], fail: h.fail as ActionHandler['fail'] };
}

/** A command that undoes a step's action; it must succeed (as a no-op) when the action never happened. */
export function defineCompensation<S extends TSchema>(input: S, handle: (ctx: StepContext<Static<S>>) => Promise<Handled>): CompensationHandler {
  return { role: 'compensation', input: validator(input, 'command input'), handle: handle as CompensationHandler['handle'] };
}

export function failedResult(code: string, message: string): StepResult {
  return { outcome: 'failed', error: { code, message } };
}

// ---- The consumer ----

export interface ParticipantOptions {
  service: string;
  js: JetStreamClient;
  /** Publishes the replies; default `js` (a JetStreamPublisher costs less per reply). */
  publisher?: Publisher;
  jsm: JetStreamManager;
  log: Logger;
  metrics: ServiceMetrics;
  commands: Record<string, CommandHandler>;
  concurrency: number;
  /** Global faults; default FaultStore.open(js) (closed again on stop). */
  faults?: Pick<FaultStore, 'list'>;
  /** Replicas of the faults bucket when this opens it (config JETSTREAM_REPLICAS); default 1. */
  replicas?: number;
  /** Longer than any step timeout; a handler in injected latency keeps its message with `working()`. Default 30 s. */
  ackWaitMs?: number;
  /** Uniform in [0, 1) for failure rates; default Math.random. */
  random?: () => number;
  /** What crash-after-commit does; default SIGKILL (tests pass a fake). */
  crash?: () => never;
}

/** What a service's `start(config, seams)` lets tests replace: crash-after-commit and the failure-rate dice. */
export type ParticipantSeams = Pick<ParticipantOptions, 'crash' | 'random'>;

/** run, step, action and attempt: enough to address a reply. */
export type ReplyAddress = Pick<StepReply, 'runId' | 'step' | 'action' | 'attempt'>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The reply address of a command whose data is JSON with a valid runId, step, action and attempt,
 * even when the rest is wrong (so the engine hears why instead of waiting for a timeout). Pure.
 */
export function readAddress(data: Uint8Array): ReplyAddress | undefined {
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(data));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const { runId, step, action, attempt } = v as Record<string, unknown>;
  if (typeof runId !== 'string' || !isValidId(runId) || typeof step !== 'string' || !isValidId(step)) return undefined;
  if (action !== 'do' && action !== 'compensate') return undefined;
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined;
  return { runId, step, action, attempt };
}

const commandValidator = validator(StepCommand, 'step command');

/** Sleeps `ms` in slices, telling JetStream after each that the message is still being worked on. */
function heartbeatSleep(working: () => void, sliceMs: number) {
  return async (ms: number, signal?: AbortSignal): Promise<void> => {
    const end = Date.now() + ms;
    for (let left = ms; left > 0; left = end - Date.now()) {
      await sleepFor(Math.min(left, sliceMs), undefined, signal ? { signal } : {});
      working();
    }
  };
}

/** Starts consuming the service's commands (durable `<service>-commands`). */
export async function runParticipant(opts: ParticipantOptions): Promise<ConsumerHandle> {
  const { service, js, commands, log } = opts;
  const publisher = opts.publisher ?? js;
  const ackWaitMs = opts.ackWaitMs ?? 30_000;
  const ownFaults = opts.faults ? undefined : await FaultStore.open(js, { log, replicas: opts.replicas });
  const faults = opts.faults ?? ownFaults!;
  const prefix = Subjects.command(service, '');
  const known = Object.keys(commands).join(', ');

  async function reply(address: ReplyAddress, result: StepResult, causationId: string | undefined): Promise<void> {
    const { runId, step, action, attempt } = address;
    const data: StepReply = { runId, step, action, attempt, ...result };
    await publishEvent(publisher, Subjects.reply(address.runId), {
      type: STEP_REPLY_TYPE,
      source: service,
      data,
      correlationId: address.runId,
      ...(causationId ? { causationId } : {}),
      msgId: commandMsgId(address.runId, address.step, address.action, address.attempt),
    });
  }

  async function refuse(m: JsMsg, address: ReplyAddress, code: string, message: string): Promise<HandlerResult> {
    const { runId, step, attempt } = address;
    log.warn({ subject: m.subject, runId, step, attempt, code, reason: message }, 'command refused');
    await reply(address, failedResult(code, message), m.headers?.get(CeHeaders.id) || undefined);
    return 'ack';
  }

  async function onMessage(m: JsMsg, hctx: HandlerContext): Promise<HandlerResult> {
    const name = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : m.subject;
    const handler = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!handler) {
      const why = `${service} has no command "${name}" (it handles ${known})`;
      const address = readAddress(m.data);
      if (!address) throw new PoisonMessageError(`${why}, and the message has no run/step/attempt to reply to`);
      return refuse(m, address, StepErrorCodes.unknownCommand, why);
    }
    let env: Envelope<StepCommand>;
    try {
      env = decodeMessage(m, commandValidator, [stepCommandType(service, name)]);
    } catch (err) {
      // Only a refused command needs its address read apart from the rest (the data is parsed again).
      const address = err instanceof PoisonMessageError ? readAddress(m.data) : undefined;
      if (!address) throw err;
      return refuse(m, address, StepErrorCodes.invalidCommand, (err as PoisonMessageError).reason);
    }
    const command = env.data;
    const expected = handler.role === 'action' ? 'do' : 'compensate';
    if (command.action !== expected) {
      return refuse(m, command, StepErrorCodes.invalidCommand, `${service}.${name} is a ${handler.role}, but the command's action is "${command.action}"`);
    }
    let input: unknown;
    try {
      input = handler.input.parse(command.input);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return refuse(m, command, StepErrorCodes.invalidInput, `${service}.${name}: ${err.message}`);
    }
    const { runId, step, action, attempt } = command;
    let stepLog: Logger | undefined;
    const ctx: StepContext = {
      command,
      input,
      key: stepKey(runId, step, action),
      actionKey: stepKey(runId, step, 'do'),
      // Made on first use: most commands log nothing at the usual levels.
      get log() {
        return (stepLog ??= log.child({ runId, step, command: name, attempt }));
      },
    };
    const target = `${service}.${name}`;
    const fault = effectiveFault(target, command.faults, faults.list());
    const decision = await applyFault(fault, {
      sleep: heartbeatSleep(hctx.working, Math.max(100, Math.floor(ackWaitMs / 3))),
      signal: hctx.signal,
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.crash ? { crash: opts.crash } : {}),
    });
    let handled: Handled;
    if (decision.fail) {
      const error = { code: StepErrorCodes.injectedFailure, message: `injected failure of ${target}` };
      // An action's injected failure is its (stored) business result; a compensation's is not stored, so its retry can succeed.
      handled = handler.role === 'action' ? await handler.fail(ctx, error) : { result: { outcome: 'failed', error }, committed: false };
    } else {
      handled = await handler.handle(ctx);
    }
    if (handled.committed) decision.crashAfterCommit();
    const { result } = handled;
    const logCtx = { outcome: result.outcome, error: result.error, replayed: !handled.committed, deliveryCount: hctx.deliveryCount };
    const level = result.outcome === 'failed' ? 'info' : 'debug';
    if (log.isLevelEnabled(level)) ctx.log[level](logCtx, result.outcome === 'failed' ? 'step failed' : 'step done');
    await reply(command, result, env.id);
    return 'ack';
  }

  const consumer = runConsumer({
    js,
    jsm: opts.jsm,
    stream: Streams.commands.name,
    consumer: { durable: Consumers.participant(service), filterSubjects: [Subjects.commandsOf(service)], ackWaitMs },
    concurrency: opts.concurrency,
    service,
    log,
    metrics: opts.metrics,
    handler: onMessage,
  });
  return {
    ready: consumer.ready,
    async stop() {
      await consumer.stop();
      await ownFaults?.close();
    },
  };
}

// ---- Idempotent records ----

/** The optimistic-concurrency refusal of a KV write (the key changed, or exists when it should not). */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** One record per step: its origin, the action's data and result, the compensation's result. */
export interface StepRecord<D> {
  origin: RunOrigin;
  data?: D;
  action?: StepResult;
  compensation?: StepResult;
}

export const COMPENSATED_BEFORE_ACTION: StepResult = failedResult(
  StepErrorCodes.compensatedBeforeAction,
  'this step was compensated before its action arrived; the late action is refused',
);

/**
 * Idempotent effects that are one KV record per step (key `step.<runId>.<step>`): the record IS the
 * effect, written with compare-and-set, so a repeat finds it and a crash either stored it or not.
 * An action costs one write (create); a compensation one read and one write.
 */
export class StepLedger<D> {
  readonly kv: KV;
  readonly #write: (key: string, value: string, previousSeq: number) => Promise<number>;
  /** Reads through `kv`; writes go through `via.publisher` (a KV write is a publish to bucket `via.bucket`). */
  constructor(kv: KV, via: { publisher: Publisher; bucket: string }) {
    this.kv = kv;
    this.#write = (key, value, previousSeq) => kvWrite(via.publisher, via.bucket, key, value, previousSeq);
  }

  static keyOf(actionKey: string): string {
    return `step.${actionKey}`;
  }

  /** Records the action's result (and data) unless the key has one, or was compensated first. */
  async act(ctx: StepContext, result: StepResult, data?: D): Promise<Handled> {
    const key = StepLedger.keyOf(ctx.actionKey);
    const rec: StepRecord<D> = { origin: ctx.command.origin, action: result, ...(data === undefined ? {} : { data }) };
    try {
      // previousSeq 0 = create (records are never deleted), without kv.create's extra read on conflict.
      await this.#write(key, JSON.stringify(rec), 0);
      return { result, committed: true };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    const existing = await this.get(key);
    if (!existing) throw new Error(`step record ${key} exists but cannot be read`);
    if (existing.rec.action) return { result: existing.rec.action, committed: false };
    return { result: COMPENSATED_BEFORE_ACTION, committed: false };
  }

  /**
   * Records the compensation's result, decided from the action's record (undefined when the action
   * never happened: the record written then is the tombstone that refuses the late action).
   */
  async compensate(ctx: StepContext, decide: (rec: StepRecord<D> | undefined) => StepResult): Promise<Handled> {
    const key = StepLedger.keyOf(ctx.actionKey);
    for (;;) {
      const existing = await this.get(key);
      if (existing?.rec.compensation) return { result: existing.rec.compensation, committed: false };
      const result = decide(existing?.rec);
      const rec: StepRecord<D> = existing ? { ...existing.rec, compensation: result } : { origin: ctx.command.origin, compensation: result };
      try {
        await this.#write(key, JSON.stringify(rec), existing?.revision ?? 0);
        return { result, committed: true };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // the action (or a duplicate) wrote in between: decide again on what is there now
      }
    }
  }

  async get(key: string): Promise<{ rec: StepRecord<D>; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { rec: e.json<StepRecord<D>>(), revision: e.revision };
  }
}

// ---- Books ----

export type Tally = Record<string, number>;

/**
 * Sums numeric contributions of every current value of a bucket, kept current by a KV watch started on
 * first use. `totals()` first waits until the watch has seen the bucket's last revision at call time,
 * so it reflects every write that completed before the call.
 */
export class KvTally {
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #contribute: (key: string, value: unknown) => Tally;
  readonly #log: Logger;
  readonly #byKey = new Map<string, Tally>();
  #totals: Tally = {};
  #revision = 0;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #starting: Promise<void> | undefined;
  /** Bumped by reset(): a watch of an older generation no longer touches the tally. */
  #generation = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];

  constructor(kv: KV, bucket: string, contribute: (key: string, value: unknown) => Tally, log: Logger) {
    this.#kv = kv;
    this.#bucket = bucket;
    this.#contribute = contribute;
    this.#log = log;
  }

  async totals(timeoutMs = 10_000): Promise<Tally> {
    for (let generation = -1; generation !== this.#generation; ) {
      generation = this.#generation;
      this.#starting ??= this.#start();
      await this.#starting;
    }
    const { last_seq: last, messages } = (await this.#kv.status()).streamInfo.state;
    // An empty bucket (purged) has nothing to wait for, whatever its last sequence.
    if (this.#revision < last && messages > 0) {
      const caughtUp = new Promise<void>((resolve) => this.#waiters.push({ revision: last, resolve }));
      const ac = new AbortController();
      const timeout = sleepFor(timeoutMs, undefined, { signal: ac.signal, ref: false }).then(() => {
        throw new Error(`the books of bucket ${this.#bucket} did not catch up with revision ${last} within ${timeoutMs} ms`);
      });
      try {
        await Promise.race([caughtUp, timeout]);
      } finally {
        ac.abort();
      }
    }
    return { ...this.#totals };
  }

  stop(): void {
    this.#watch?.stop();
  }

  /** Forgets everything; the next totals() reads the bucket again (after it was purged and refilled). */
  reset(): void {
    this.#generation++;
    this.#watch?.stop();
    this.#forget();
  }

  #forget(): void {
    this.#watch = undefined;
    this.#starting = undefined;
    this.#byKey.clear();
    this.#totals = {};
    this.#revision = 0;
  }

  #apply(e: KvWatchEntry): void {
    const before = this.#byKey.get(e.key) ?? {};
    let after: Tally = {};
    if (e.operation === 'PUT') {
      try {
        after = this.#contribute(e.key, e.json());
      } catch (err) {
        this.#log.error({ err, bucket: this.#bucket, key: e.key }, 'unreadable record left out of the books');
      }
    }
    for (const [k, v] of Object.entries(before)) this.#totals[k] = (this.#totals[k] ?? 0) - v;
    for (const [k, v] of Object.entries(after)) this.#totals[k] = (this.#totals[k] ?? 0) + v;
    if (Object.keys(after).length > 0) this.#byKey.set(e.key, after);
    else this.#byKey.delete(e.key);
    this.#revision = Math.max(this.#revision, e.revision);
    this.#waiters = this.#waiters.filter((w) => (w.revision <= this.#revision ? (w.resolve(), false) : true));
  }

  async #start(): Promise<void> {
    const generation = this.#generation;
    const watch = await this.#kv.watch();
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    this.#watch = watch;
    void (async () => {
      try {
        for await (const e of watch) if (generation === this.#generation) this.#apply(e);
      } catch (err) {
        this.#log.warn({ err }, 'books watch failed; it restarts on the next query');
      }
      // Ended (stopped or failed): forget everything, the next totals() rebuilds from the bucket.
      if (generation === this.#generation) this.#forget();
    })();
  }
}

// ---- Queries ----

/**
 * Answers core-NATS requests on `subject` (queue group `queue`) with the JSON `answer()` resolves to,
 * or `{"error":{"code":"internal","message"}}` when it throws.
 */
export function answerQueries(nc: NatsConnection, subject: string, queue: string, log: Logger, answer: () => Promise<unknown>): Subscription {
  return nc.subscribe(subject, {
    queue,
    callback: (err, msg) => {
      if (err) {
        log.warn({ err, subject }, 'query subscription error');
        return;
      }
      answer().then(
        (body) => msg.respond(JSON.stringify(body)),
        (e: unknown) => {
          log.error({ err: e, subject }, 'query failed');
          msg.respond(JSON.stringify({ error: { code: 'internal', message: (e as Error)?.message ?? String(e) } }));
        },
      );
    },
  });
}
