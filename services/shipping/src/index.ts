/** The shipping service: saga participant (create / cancel, idempotent by step key) and its audit query. */
import { Buckets } from '@sagamesh/contracts';
import { startLedgerParticipant, type ParticipantSeams, type Started } from '@sagamesh/kit';
import type { ShippingConfig } from './config.ts';
import { shippingAudit, shippingCommands, shippingContribution } from './shipping.ts';

export type { ShippingConfig } from './config.ts';
export { ShippingConfigSchema } from './config.ts';

export function start(config: ShippingConfig, seams: ParticipantSeams = {}): Promise<Started> {
  return startLedgerParticipant<never>(
    'shipping',
    config,
    { bucket: Buckets.shipping, commands: shippingCommands, contribution: shippingContribution, audit: shippingAudit },
    seams,
  );
}
