/** The payments service: saga participant (charge / refund, idempotent by step key) and its books query. */
import { Buckets } from '@sagamesh/contracts';
import { type ParticipantSeams, startLedgerParticipant } from '@sagamesh/participant';
import type { Started } from '@sagamesh/runtime';
import type { PaymentsConfig } from './config.ts';
import { paymentCommands, paymentStepBooks, paymentsBooksReply, type Charge } from './payments.ts';

export type { PaymentsConfig } from './config.ts';
export { PaymentsConfigSchema } from './config.ts';

const ledger = { bucket: Buckets.payments, commands: paymentCommands, books: paymentStepBooks, booksReply: paymentsBooksReply };

export const start = (config: PaymentsConfig, seams: ParticipantSeams = {}): Promise<Started> => startLedgerParticipant<Charge>('payments', config, ledger, seams);
