// @sagamesh/runtime: what every sagamesh process runs on (config, logs, metrics, traces, HTTP, NATS, JetStream
// consumers and publishing, boot and shutdown). No saga knowledge beyond the contracts' names. Contract: libs/API.md.
export * from './config.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './http.ts';
export * from './lifecycle.ts';
export * from './idle-memory.ts';
export * from './tracing.ts';
export * from './nats.ts';
export * from './messages.ts';
export * from './consumer.ts';
export * from './publisher.ts';
export * from './queries.ts';
export * from './books.ts';
export * from './service.ts';
export * from './provision.ts';
export * from './stream-usage.ts';
export * from './dead-letters.ts';
export { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
export type { JetStreamClient, JetStreamManager, JsMsg, PubAck } from '@nats-io/jetstream';
export type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
