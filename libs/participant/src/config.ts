import { Type } from '@sinclair/typebox';
import { CommonConfig, portConfig } from '@sagamesh/runtime/config';

/** The switch of fault injection, in the services that apply or administer faults (participants, the gateway). */
export const FaultInjectionConfig = {
  FAULT_INJECTION: Type.Boolean({
    default: false,
    description: "Apply injected faults (/admin/faults, a Saga's spec.faults): on in make dev and the tests, off in a cluster unless make up / the synth turns it on",
  }),
};

/** The fields of a saga participant (payments, shipping, inventory): CommonConfig, its port, its commands consumer. */
export const participantConfig = (port: number) => ({
  ...CommonConfig,
  ...portConfig(port),
  ...FaultInjectionConfig,
  CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'In-flight messages per consumer' }),
  COMMAND_ACK_WAIT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description: 'AckWait of the commands consumer: longer than any step timeout (injected latency keeps the message alive)',
  }),
});
