// Test support for the pure core: definitions, a driver, and a random-world simulator.
import { isTerminalPhase, type SagaDefinitionSpec, type StepCommand, type StepReply } from '@sagamesh/contracts';
import { resolveDefinition, type ResolvedDefinition } from '../../src/core/definition.ts';
import { transition } from '../../src/core/transition.ts';
import type { CommandEffect, Effect, EngineInput, EventEffect, RunState, TimerEffect, TimerPayload } from '../../src/core/types.ts';

export const T0 = Date.UTC(2025, 0, 1);

export function def(spec: SagaDefinitionSpec, key = 'builtin.test'): ResolvedDefinition {
  return resolveDefinition(key, 'rev1', spec);
}

export const commands = (effects: Effect[]) => effects.filter((e): e is CommandEffect => e.type === 'command');
export const timers = (effects: Effect[]) => effects.filter((e): e is TimerEffect => e.type === 'timer');
export const events = (effects: Effect[]) => effects.filter((e): e is EventEffect => e.type === 'event');

export function replyTo(cmd: StepCommand, outcome: 'succeeded' | 'failed', extra: Partial<StepReply> = {}): EngineInput {
  return {
    type: 'reply',
    reply: {
      runId: cmd.runId, step: cmd.step, action: cmd.action, attempt: cmd.attempt, outcome,
      ...(outcome === 'failed' ? { error: { code: 'declined', message: 'no' } } : {}),
      ...extra,
    },
  };
}

/** Applies inputs one after another, keeping every effect, with a clock the test moves. */
export class Driver {
  run: RunState | undefined;
  now = T0;
  readonly def: ResolvedDefinition;
  readonly log: { input: EngineInput; effects: Effect[] }[] = [];

  constructor(d: ResolvedDefinition) {
    this.def = d;
  }

  apply(input: EngineInput, at = this.now): Effect[] {
    this.now = Math.max(this.now, at);
    const { run, effects } = transition(this.run, this.def, input, this.now);
    this.run = run;
    this.log.push({ input, effects });
    return effects;
  }

  start(extra: Partial<Extract<EngineInput, { type: 'start' }>> = {}): Effect[] {
    return this.apply({ type: 'start', runId: 'r1', origin: 'order', input: { customerId: 'c' }, ...extra });
  }

  fire(t: TimerEffect | TimerPayload): Effect[] {
    const timer = 'timer' in t ? t.timer : t;
    return this.apply({ type: 'timer', timer }, timer.at);
  }

  get all(): Effect[] {
    return this.log.flatMap((l) => l.effects);
  }

  get state(): RunState {
    if (!this.run) throw new Error('no run yet');
    return this.run;
  }
}

// ---- Random world: a pool of in-flight messages delivered in any order, some more than once ----

export type Outcome = 'succeeded' | 'failed' | 'drop';
export interface SimStep {
  pick: number;
  /** Deliver without removing: the message comes again later (redelivery / duplicate publish). */
  dup: boolean;
  outcome: Outcome;
  /** A fabricated input injected before the delivery (stale, wrong step/action, cancel…). */
  inject?: EngineInput;
}
export interface Script {
  steps: SimStep[];
  drainOutcomes: ('succeeded' | 'failed')[];
}

/** `due`: when the item would arrive in a healthy world (the drain delivers in that order). */
type PoolItem = ({ kind: 'command'; command: StepCommand } | { kind: 'input'; input: EngineInput }) & { due: number };

export interface SimLog {
  /** Every transition in order, with the run before and after. */
  entries: { input: EngineInput; before: RunState | undefined; after: RunState; effects: Effect[] }[];
  final: RunState;
}

/**
 * Runs one random world to completion: the script's choices (any order, duplicates, drops, injected
 * inputs), then a drain in arrival-time order until nothing is in flight.
 */
export function simulate(d: ResolvedDefinition, script: Script, startInput: EngineInput): SimLog {
  let now = T0;
  let run: RunState | undefined;
  const pool: PoolItem[] = [];
  const entries: SimLog['entries'] = [];

  const apply = (input: EngineInput) => {
    if (input.type === 'timer') now = Math.max(now, input.timer.at);
    else now += 1;
    if (!run && input.type !== 'start') return;
    const before = run;
    const res = transition(run, d, input, now);
    run = res.run;
    entries.push({ input, before, after: res.run, effects: res.effects });
    for (const e of res.effects) {
      if (e.type === 'command') pool.push({ kind: 'command', command: e.command, due: now });
      if (e.type === 'timer') pool.push({ kind: 'input', input: { type: 'timer', timer: e.timer }, due: e.at });
    }
  };
  const deliver = (item: PoolItem, outcome: Outcome) => {
    if (item.kind === 'input') return apply(item.input);
    if (outcome === 'drop') return;
    pool.push({ kind: 'input', input: replyTo(item.command, outcome), due: now + 1 });
  };

  apply(startInput);
  for (const s of script.steps) {
    if (s.inject) apply(s.inject);
    if (pool.length === 0) break;
    const i = s.pick % pool.length;
    const item = pool[i]!;
    if (!s.dup) pool.splice(i, 1);
    deliver(item, s.outcome);
  }
  let k = 0;
  while (pool.length > 0) {
    if (k > 10_000) throw new Error('simulation does not terminate');
    let first = 0;
    for (let i = 1; i < pool.length; i++) if (pool[i]!.due < pool[first]!.due) first = i;
    const [item] = pool.splice(first, 1) as [PoolItem];
    const outcome = script.drainOutcomes.length ? script.drainOutcomes[k % script.drainOutcomes.length]! : 'succeeded';
    deliver(item, outcome);
    k++;
  }
  if (!run) throw new Error('no run');
  return { entries, final: run };
}

export const terminal = (r: RunState | undefined) => r !== undefined && isTerminalPhase(r.phase);
