import pino, { type Logger, type LevelWithSilent } from 'pino';

import { LOG_REDACT } from '@tether/protocol';

/** Secrets that must never reach a log line, wherever they appear. */
export const REDACT = LOG_REDACT;

export function createLogger(level: LevelWithSilent, name: string): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } });
}
