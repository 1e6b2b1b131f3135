export * from './config.js';
export * from './agent.js';
export * from './facts.js';
export * from './identity.js';
export * from './backoff.js';
export * from './reporter.js';
export * from './collectors/index.js';
export * from './files/service.js';
