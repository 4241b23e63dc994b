// @sagamesh/testing: real-process test rigs (a nats-server, a kube-apiserver + etcd, an in-memory tracer, a participant rig). Tests only: no image ships it.
export * from './nats-server.ts';
export * from './nats-auth.ts';
export * from './nats-fixture.ts';
export * from './tracing.ts';
export * from './kube-rig.ts';
export * from './participant-rig.ts';
