import pino, { type Logger, type LevelWithSilent } from 'pino';

/** Secrets that must never reach a log line, wherever they appear. */
export const REDACT = [
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

export function createLogger(level: LevelWithSilent, name: string): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } });
}
