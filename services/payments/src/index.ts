/** The payments service: saga participant (charge / refund, idempotent by step key) and its audit query. */
import { Buckets } from '@sagamesh/contracts';
import { startLedgerParticipant, type ParticipantSeams, type Started } from '@sagamesh/kit';
import type { PaymentsConfig } from './config.ts';
import { paymentCommands, paymentContribution, paymentsAudit, type Charge } from './payments.ts';

export type { PaymentsConfig } from './config.ts';
export { PaymentsConfigSchema } from './config.ts';

export function start(config: PaymentsConfig, seams: ParticipantSeams = {}): Promise<Started> {
  return startLedgerParticipant<Charge>(
    'payments',
    config,
    { bucket: Buckets.payments, commands: paymentCommands, contribution: paymentContribution, audit: paymentsAudit },
    seams,
  );
}
