export * from './limits.js';
export * from './labels.js';
export * from './facts.js';
export * from './messages.js';
export * from './codec.js';
export * from './auth.js';
export const TETHER_VERSION = '0.1.0';
export * from './config.js';
export * from './metrics.js';
export * from './actions.js';

/** Log paths that must never carry secrets, for every Tether process's pino logger. */
export const LOG_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'password',
  'token',
  'enrollToken',
  '*.password',
  '*.token',
  '*.enrollToken',
];
export * from './tar.js';
