/** The saga participant's handler DSL: an action or a compensation per command, with its input schema. */
import type { Static, TSchema } from '@sinclair/typebox';
import { StepCommand, validator, type StepError, type StepResult, type Validator } from '@sagamesh/contracts';
import type { Logger } from '@sagamesh/runtime';

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
