// @sagamesh/kit: the shared runtime of every service (contract: API.md).
export * from './config.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './http.ts';
export * from './lifecycle.ts';
export * from './tracing.ts';
export * from './nats.ts';
export * from './messages.ts';
export * from './consumer.ts';
export * from './publisher.ts';
export * from './faults.ts';
export { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
export type { JetStreamClient, JetStreamManager, JsMsg, PubAck } from '@nats-io/jetstream';
export type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
export * from './participant.ts';
export * from './engine-client.ts';
export * from './service.ts';
