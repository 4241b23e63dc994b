import { randomBytes } from 'node:crypto';

/**
 * Ids (run ids, step names, definition names) are used inside NATS subjects and KV keys,
 * which allow no ':' or spaces; '.' is the separator, so it is not allowed inside an id.
 */
export const ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$';
const idRe = new RegExp(ID_PATTERN);

export function isValidId(value: string): boolean {
  return idRe.test(value);
}

/**
 * A new order id: `ord-` and 16 characters of [A-Za-z0-9_-] (96 random bits). The gateway gives every order
 * one before it calls orders, so a retried call reaches the same order; orders picks one when none is given.
 */
export const newOrderId = (): string => `ord-${randomBytes(12).toString('base64url')}`;

/** Participant idempotency key of a step's action or compensation. */
export function stepKey(runId: string, step: string, action: 'do' | 'compensate'): string {
  return action === 'do' ? `${runId}.${step}` : `${runId}.${step}.compensate`;
}

/** JetStream publish de-dup id (Nats-Msg-Id): the step key plus the attempt, so a retry is not swallowed. */
export function commandMsgId(runId: string, step: string, action: 'do' | 'compensate', attempt: number): string {
  return `${stepKey(runId, step, action)}.${attempt}`;
}

/** Definition keys: `builtin.<name>` or `k8s.<namespace>.<name>`. */
export function builtinDefinitionKey(name: string): string {
  return `builtin.${name}`;
}
export function k8sDefinitionKey(namespace: string, name: string): string {
  return `k8s.${namespace}.${name}`;
}
