// @sagamesh/kit: the shared runtime of every service (contract: API.md).
export * from './config.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './http.ts';
export * from './lifecycle.ts';
export * from './tracing.ts';
