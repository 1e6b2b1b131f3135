/** Plain values every process needs, with no schema library behind them (see lite.ts). */
export const TETHER_VERSION = '0.1.0';

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

/** Signals the hub may ask an agent to send to a task's process group. */
export const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT'] as const;
export type SignalName = (typeof SIGNALS)[number];
