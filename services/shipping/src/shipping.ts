/**
 * Shipping's commands: `create` records the shipment under the step's key (one KV create: the record
 * is the shipment), `cancel` cancels it (nothing when it never happened, leaving the tombstone that
 * refuses a late create). The books count the records, per origin.
 */
import { Type } from '@sinclair/typebox';
import type { ShippingBooksReply } from '@sagamesh/contracts';
import { type CommandHandler, defineAction, defineCompensation, type StepLedger, type StepRecord } from '@sagamesh/participant';
import { booksPerOrigin, perOrigin, type Books } from '@sagamesh/runtime';

export type ShipmentRecord = StepRecord<never>;

/** Shipments a record created and cancelled: a cancel counts only a shipment that exists. */
export function shippingBooks(rec: ShipmentRecord): { created: number; cancelled: number } {
  const created = rec.action?.outcome === 'succeeded' ? 1 : 0;
  const cancelled = rec.compensation?.outcome === 'succeeded' ? created : 0;
  return { created, cancelled };
}

/** The shipment id: derived from the step key, so a repeated create names the same shipment. */
export const shipmentId = (actionKey: string) => `shp.${actionKey}`;

export function shippingCommands(ledger: StepLedger<never>): Record<string, CommandHandler> {
  return {
    // The input (customer, items) is what a real carrier would need; this simulation needs nothing of it.
    create: defineAction(Type.Object({}), {
      handle: (ctx) => ledger.act(ctx, { outcome: 'succeeded', output: { shipmentId: shipmentId(ctx.actionKey) } }),
      fail: (ctx, error) => ledger.act(ctx, { outcome: 'failed', error }),
    }),
    cancel: defineCompensation(Type.Object({}), (ctx) =>
      ledger.compensate(ctx, (rec) => ({ outcome: 'succeeded', output: { cancelled: rec ? shippingBooks(rec).created === 1 : false } })),
    ),
  };
}

/** A step's books, per origin (the ledger's books sum them: ledgerContribution). */
export function shippingStepBooks(rec: ShipmentRecord): Books {
  return perOrigin(rec.origin, shippingBooks(rec));
}

export function shippingBooksReply(t: Books): ShippingBooksReply {
  return booksPerOrigin(t, ['created', 'cancelled']);
}
