/**
 * Payments' commands: `charge` records the amount under the step's key (one KV create: the record is
 * the charge), `refund` gives back what that record charged (nothing when it never happened, leaving
 * the tombstone that refuses a late charge). The books sum the records, per origin.
 */
import { Type } from '@sinclair/typebox';
import { MAX_AMOUNT_CENTS, type PaymentsBooksReply } from '@sagamesh/contracts';
import { type CommandHandler, defineAction, defineCompensation, type StepLedger, type StepRecord } from '@sagamesh/participant';
import { booksPerOrigin, perOrigin, type Books } from '@sagamesh/runtime';

export const ChargeInput = Type.Object({ amountCents: Type.Integer({ minimum: 0, maximum: MAX_AMOUNT_CENTS, description: 'What to charge, in cents.' }) });
export interface Charge {
  amountCents: number;
}
export type PaymentRecord = StepRecord<Charge>;

/** Cents a record has charged and refunded: a refund returns exactly what its charge took, if anything. */
export function paymentBooks(rec: PaymentRecord): { charged: number; refunded: number } {
  const charged = rec.action?.outcome === 'succeeded' ? (rec.data?.amountCents ?? 0) : 0;
  const refunded = rec.compensation?.outcome === 'succeeded' ? charged : 0;
  return { charged, refunded };
}

export function paymentCommands(ledger: StepLedger<Charge>): Record<string, CommandHandler> {
  return {
    charge: defineAction(ChargeInput, {
      handle: (ctx) => {
        const { amountCents } = ctx.input;
        return ledger.act(ctx, { outcome: 'succeeded', output: { chargedCents: amountCents } }, { amountCents });
      },
      fail: (ctx, error) => ledger.act(ctx, { outcome: 'failed', error }),
    }),
    refund: defineCompensation(Type.Object({}), (ctx) =>
      ledger.compensate(ctx, (rec) => ({ outcome: 'succeeded', output: { refundedCents: rec ? paymentBooks(rec).charged : 0 } })),
    ),
  };
}

/** A step's books, per origin (the ledger's books sum them: ledgerContribution). */
export function paymentStepBooks(rec: PaymentRecord): Books {
  return perOrigin(rec.origin, paymentBooks(rec));
}

export function paymentsBooksReply(t: Books): PaymentsBooksReply {
  return booksPerOrigin(t, ['charged', 'refunded']);
}
