export * from './cluster.ts';
export * from './mesh.ts';
export * from './nats.ts';
export * from './network.ts';
export * from './operator.ts';
export * from './platform.ts';
export * from './service.ts';
export * from './provision.ts';
