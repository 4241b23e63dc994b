// @sagamesh/participant: the saga participant SDK — the step-handler DSL and runtime, the step ledger and its
// books' contributions, the engine client that starts and reads runs, and injected faults. Built on @sagamesh/runtime.
export * from './config.ts';
export * from './participant-handlers.ts';
export * from './participant.ts';
export * from './ledger.ts';
export * from './engine-client.ts';
export * from './faults.ts';
export * from './boot.ts';
