import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { participantConfig } from '@sagamesh/participant/config';

export const PaymentsConfigSchema = Type.Object(participantConfig(Ports.payments));
export type PaymentsConfig = Static<typeof PaymentsConfigSchema>;
