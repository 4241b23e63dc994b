// @sagamesh/kit/testing: real-process test helpers (contract: API.md).
export * from './nats-server.ts';
