/** The Saga's and SagaDefinition's status conditions (Kubernetes' metav1.Condition rules). Pure. */
import {
  isTerminalPhase,
  type Condition,
  type SagaPhase,
} from '@sagamesh/contracts';

/** Sets one condition (metav1 semantics: lastTransitionTime moves only when the status changes). */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: { type: string; status: Condition['status']; reason: string; message: string; observedGeneration: number },
  now: string,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const updated: Condition = { ...next, lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now };
  if (i >= 0) list[i] = updated;
  else list.push(updated);
  return list;
}

/** `Completed` (True in every terminal phase) and `Succeeded`; both with reason = the phase. */
export function sagaConditions(prev: readonly Condition[] | undefined, phase: SagaPhase, message: string, generation: number, now: string): Condition[] {
  const terminal = isTerminalPhase(phase);
  let conditions = setCondition(prev, { type: 'Completed', status: terminal ? 'True' : 'False', reason: phase, message, observedGeneration: generation }, now);
  const succeeded = phase === 'Succeeded' ? 'True' : terminal ? 'False' : 'Unknown';
  conditions = setCondition(conditions, { type: 'Succeeded', status: succeeded, reason: phase, message, observedGeneration: generation }, now);
  return conditions;
}
