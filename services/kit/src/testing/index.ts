// @sagamesh/kit/testing: real-process test helpers (contract: API.md).
export * from './nats-server.ts';
export * from './tracing.ts';
export * from './kube-rig.ts';
