import { Type, type Static } from '@sinclair/typebox';
import { ceType } from './messaging.ts';
import { SagaItem, type StepReply } from './saga.ts';

/**
 * What travels between the engine and the participants besides StepCommand / StepReply themselves:
 * their ce-types, the error codes of a failed reply, and the outputs others read.
 */

/** ce-type of a step command on `cmd.<service>.<command>`: `sagamesh.<service>.<command>.v1`. */
export function stepCommandType(service: string, command: string): string {
  return ceType(service, command);
}

/** ce-type of every StepReply on `saga.replies.<runId>` (whichever participant sends it). */
export const STEP_REPLY_TYPE = ceType('saga', 'step_reply');

/** What a participant decided for one command: a StepReply without its address (run, step, attempt). */
export type StepResult = Pick<StepReply, 'outcome' | 'error' | 'output'>;

/** `error.code` of a failed StepReply. */
export const StepErrorCodes = {
  /** The command is readable but not a valid StepCommand (or an action sent as a compensation, or the reverse). */
  invalidCommand: 'invalid_command',
  /** The service has no such command. */
  unknownCommand: 'unknown_command',
  /** `input` lacks what the command needs (e.g. payments.charge without amountCents). */
  invalidInput: 'invalid_input',
  /** A fault injected on purpose (`/admin/faults` or the run's own faults). */
  injectedFailure: 'injected_failure',
  /** The step's compensation arrived first: the late action is refused, so nothing leaks. */
  compensatedBeforeAction: 'compensated_before_action',
  /** inventory.reserve: not enough available stock of the sku named in the message. */
  outOfStock: 'out_of_stock',
  /** inventory.reserve: a sku that is not in the catalogue. */
  unknownSku: 'unknown_sku',
  /** inventory.release: the reservation was already sold (its run succeeded); nothing to release. */
  alreadySold: 'already_sold',
} as const;
export type StepErrorCode = (typeof StepErrorCodes)[keyof typeof StepErrorCodes];

/**
 * Output of a succeeded `inventory.reserve`. The engine keeps a step's output in the run view, and
 * inventory finds what to sell when the run succeeds by the `reservation` key (choreography).
 */
export const ReservationOutput = Type.Object({
  reservation: Type.String({ description: 'The participant idempotency key of the reserve: <runId>.<step>.' }),
  items: Type.Array(SagaItem),
});
export type ReservationOutput = Static<typeof ReservationOutput>;
