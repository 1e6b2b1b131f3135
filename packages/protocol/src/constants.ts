/** Plain values every process needs, with no schema library behind them (see lite.ts). */
export const TETHER_VERSION = '0.1.0';

/**
 * What an agent is allowed to do, decided by its host's own configuration.
 * The hub can read this list but never widen it.
 */
export const CAPABILITIES = ['metrics', 'exec', 'files', 'docker', 'systemd', 'cron', 'process', 'power', 'terminal'] as const;
export type Capability = (typeof CAPABILITIES)[number];

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

/**
 * Signal names as the API and the CLI take them: `SIGKILL` or `KILL` (the README and kill(1) use
 * the short form; the wire to the agent always carries the long one).
 */
export const SIGNAL_INPUTS = [...SIGNALS, ...SIGNALS.map((s) => s.slice(3))] as readonly string[];

/** `KILL`, `kill`, `SIGKILL`, `sigkill` → `SIGKILL`; undefined for anything that is not one of SIGNALS. */
export function signalName(s: string): SignalName | undefined {
  const up = s.trim().toUpperCase();
  const full = up.startsWith('SIG') ? up : `SIG${up}`;
  return (SIGNALS as readonly string[]).includes(full) ? (full as SignalName) : undefined;
}

/** signalName, or an error that lists what is accepted. */
export function parseSignal(s: string): SignalName {
  const n = signalName(s);
  if (!n) throw new Error(`unknown signal ${JSON.stringify(s)}: one of ${SIGNALS.map((x) => x.slice(3)).join(', ')} (with or without SIG)`);
  return n;
}
