/** StepLedger: a participant's idempotent effects, one KV record per step. */
import type { KV } from '@nats-io/kv';
import { StepErrorCodes, isWrongLastSequence, type RunOrigin, type StepResult } from '@sagamesh/contracts';
import { kvWrite, type Publisher } from '@sagamesh/runtime';
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
