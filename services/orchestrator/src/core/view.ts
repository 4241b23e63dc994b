import { isTerminalPhase, type RunView } from '@sagamesh/contracts';
import type { RunState } from './types.ts';

/** The trace id inside a W3C traceparent (`00-<trace-id>-<span-id>-<flags>`). */
function traceIdOf(traceparent: string | undefined): string | undefined {
  const id = traceparent?.split('-')[1];
  return id && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

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
