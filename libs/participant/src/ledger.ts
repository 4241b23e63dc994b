/** StepLedger: a participant's idempotent effects, KV records written once per step key. */
import type { KV } from '@nats-io/kv';
import { StepErrorCodes, isWrongLastSequence, type RunOrigin, type StepResult } from '@sagamesh/contracts';
import { applyDelta, type Books, type Contribution, kvWrite, type Publisher } from '@sagamesh/runtime';
import { type StepContext, type Handled, failedResult } from './participant-handlers.ts';

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
 * Idempotent effects that are KV records keyed by step, each written once (create): the record IS the
 * effect, so a repeat finds it and a crash either stored it or not. The action's record is
 * `step.<runId>.<step>`; a compensation of an action that happened is its own record
 * `step.<runId>.<step>.compensate` (a copy of the action's record with the compensation), and one of an
 * action that never happened is the tombstone at the action's key that refuses the late action. No record
 * is ever replaced, so every record is settled for the books (they remember none). Records of the older
 * layout (the compensation written into the action's record) read the same: the action's record then
 * holds the compensation. An action costs one write; a compensation two reads and one write.
 */
export class StepLedger<D> {
  readonly kv: KV;
  readonly #write: (key: string, value: string, previousSeq: number) => Promise<number>;
  /** Reads through `kv`; writes go through `via.publisher` (a KV write is a publish to bucket `via.bucket`). */
  constructor(kv: KV, via: { publisher: Publisher; bucket: string }) {
    this.kv = kv;
    this.#write = (key, value, previousSeq) => kvWrite(via.publisher, via.bucket, key, value, previousSeq);
  }

  /** The record of a step key: `step.<key>` (the action's key, or the compensation's `<actionKey>.compensate`). */
  static keyOf(stepKey: string): string {
    return `step.${stepKey}`;
  }

  /** Records the action's result (and data) unless the key has one, or was compensated first. */
  async act(ctx: StepContext, result: StepResult, data?: D): Promise<Handled> {
    const key = StepLedger.keyOf(ctx.actionKey);
    const rec: StepRecord<D> = { origin: ctx.command.origin, action: result, ...(data === undefined ? {} : { data }) };
    if (await this.#create(key, rec)) return { result, committed: true };
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
    const actionKey = StepLedger.keyOf(ctx.actionKey);
    const key = StepLedger.keyOf(ctx.key);
    // Each refused create means another write happened (the action, or a duplicate): decide again on what is there now.
    for (;;) {
      const action = await this.get(actionKey);
      // A tombstone, or a record of the older layout that holds its compensation.
      if (action?.rec.compensation) return { result: action.rec.compensation, committed: false };
      if (!action) {
        const result = decide(undefined);
        if (await this.#create(actionKey, { origin: ctx.command.origin, compensation: result })) return { result, committed: true };
        continue;
      }
      const done = await this.get(key);
      if (done?.rec.compensation) return { result: done.rec.compensation, committed: false };
      const result = decide(action.rec);
      if (await this.#create(key, { ...action.rec, compensation: result })) return { result, committed: true };
    }
  }

  async get(key: string): Promise<{ rec: StepRecord<D>; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { rec: e.json<StepRecord<D>>(), revision: e.revision };
  }

  /** false when the key exists already. */
  async #create(key: string, rec: StepRecord<D>): Promise<boolean> {
    try {
      // previousSeq 0 = create (records are never deleted), without kv.create's extra read on conflict.
      await this.#write(key, JSON.stringify(rec), 0);
      return true;
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      return false;
    }
  }
}

/** A compensation's own record (`step.<runId>.<step>.compensate`; ids have no dots), as opposed to an action's. */
export const isCompensationRecord = (key: string): boolean => key.split('.').length === 4 && key.endsWith('.compensate');

/**
 * What a ledger record adds to books that `books` computes over a whole step (action and compensation):
 * a compensation's record copies its action's, so it adds only what the compensation changes. Every
 * record is settled (written once).
 */
export function ledgerContribution<D>(books: (rec: StepRecord<D>) => Books): (key: string, rec: StepRecord<D>) => Contribution {
  return (key, rec) => {
    const all = books(rec);
    if (!isCompensationRecord(key)) return { books: all, settled: true };
    const { compensation: _, ...action } = rec;
    return { books: applyDelta(all, {}, books(action)), settled: true };
  };
}
