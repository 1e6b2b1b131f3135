export * from './constants.js';
export * from './limits.js';
export * from './labels.js';
export * from './facts.js';
export * from './messages.js';
export * from './codec.js';
export * from './auth.js';
export * from './config.js';
export * from './metrics.js';
export * from './actions.js';
export * from './managers.js';
export * from './terminal.js';

export * from './tar.js';
