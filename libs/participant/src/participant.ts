/**
 * The runtime of a saga participant (inventory, payments, shipping): consumes `cmd.<service>.>`,
 * validates each StepCommand, applies the effective fault, calls the command's handler with the
 * step's idempotency key, publishes the StepReply (de-dup id = key + attempt) and acks only after
 * that. Handlers (participant-handlers.ts) keep their effects idempotent by key in their own KV bucket
 * (ledger.ts for effects that fit in one record; the runtime's KvBooks sums a bucket's records).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
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
  type StepReply,
  type StepResult,
  ValidationError,
} from '@sagamesh/contracts';
import { type ConsumerHandle, decodeMessage, type Envelope, type HandlerContext, type HandlerResult, type Logger, PoisonMessageError, type Publisher, publishEvent, runConsumer, type ServiceMetrics } from '@sagamesh/runtime';
import { FaultStore, applyFault } from './faults.ts';
import { type StepContext, type Handled, type CommandHandler, failedResult } from './participant-handlers.ts';

export interface ParticipantOptions {
  service: string;
  nc: NatsConnection;
  js: JetStreamClient;
  /** Publishes the replies; default `js` (a JetStreamPublisher costs less per reply). */
  publisher?: Publisher;
  jsm: JetStreamManager;
  log: Logger;
  metrics: ServiceMetrics;
  commands: Record<string, CommandHandler>;
  concurrency: number;
  /** Whether faults are applied at all (config FAULT_INJECTION): off, nothing is read and no fault ever applies. */
  faultInjection: boolean;
  /** Global faults; default FaultStore.open(js) (closed again on stop) when fault injection is on. */
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
  const ownFaults = opts.faults || !opts.faultInjection ? undefined : await FaultStore.open(js, { log, replicas: opts.replicas });
  const faults = opts.faults ?? ownFaults;
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
    const fault = opts.faultInjection && faults ? effectiveFault(target, command.faults, faults.list()) : undefined;
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
    nc: opts.nc,
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
