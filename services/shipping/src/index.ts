/** The shipping service: saga participant (create / cancel, idempotent by step key) and its books query. */
import { Buckets } from '@sagamesh/contracts';
import { type ParticipantSeams, startLedgerParticipant } from '@sagamesh/participant';
import type { Started } from '@sagamesh/runtime';
import type { ShippingConfig } from './config.ts';
import { shippingBooksReply, shippingCommands, shippingStepBooks } from './shipping.ts';

export type { ShippingConfig } from './config.ts';
export { ShippingConfigSchema } from './config.ts';

const ledger = { bucket: Buckets.shipping, commands: shippingCommands, books: shippingStepBooks, booksReply: shippingBooksReply };

export const start = (config: ShippingConfig, seams: ParticipantSeams = {}): Promise<Started> => startLedgerParticipant<never>('shipping', config, ledger, seams);
