import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { participantConfig } from '@sagamesh/participant/config';

export const ShippingConfigSchema = Type.Object(participantConfig(Ports.shipping));
export type ShippingConfig = Static<typeof ShippingConfigSchema>;
