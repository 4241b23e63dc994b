import { isTerminalPhase, traceIdOf, type RunView } from '@sagamesh/contracts';
import type { RunState } from './types.ts';

/** The public view of a run (engine `get`, saga events). */
export function toRunView(run: RunState): RunView {
  const traceId = traceIdOf(run.traceparent);
  const current = isTerminalPhase(run.phase) ? undefined : run.steps[run.cursor]?.name;
  return {
    runId: run.runId,
    definitionKey: run.definitionKey,
    revision: run.revision,
    origin: run.origin,
    phase: run.phase,
    ...(current !== undefined ? { currentStep: current } : {}),
    steps: run.steps.map((s) => ({ ...s })),
    startedAt: run.startedAt,
    ...(run.endedAt ? { endedAt: run.endedAt } : {}),
    ...(run.error ? { error: run.error } : {}),
    ...(traceId ? { traceId } : {}),
    version: run.version,
  };
}
