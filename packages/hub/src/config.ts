import { join, resolve } from 'node:path';
import { LOG_LEVELS, int, oneOf, parseListen, resolveConfig, seconds, str, type Field, type ListenAddr } from '@tether/protocol';

const hubSpec = {
  listen: { toml: 'listen', env: 'TETHER_LISTEN', default: { host: '127.0.0.1', port: 8080 }, parse: parseListen } as Field<ListenAddr>,
  data: { toml: 'data', env: 'TETHER_DATA', default: 'data', parse: str({ max: 1024 }) } as Field<string>,
  db: { toml: 'db', env: 'TETHER_DB', default: '', parse: str({ max: 2048, pattern: /^(sqlite:|postgres(ql)?:\/\/)/, what: 'sqlite:PATH or postgres://…' }) } as Field<string>,
  heartbeat: { toml: 'heartbeat', env: 'TETHER_HEARTBEAT', default: 10, parse: seconds(0.05, 3600) } as Field<number>,
  handshakeTimeout: { toml: 'handshake_timeout', env: 'TETHER_HANDSHAKE_TIMEOUT', default: 60, parse: seconds(0.1, 3600) } as Field<number>,
  maxFrameBytes: { toml: 'max_frame_bytes', env: 'TETHER_MAX_FRAME_BYTES', default: 1024 * 1024, parse: int(4096, 64 * 1024 * 1024) } as Field<number>,
  logLevel: { toml: 'log_level', env: 'TETHER_LOG_LEVEL', default: 'info', parse: oneOf(LOG_LEVELS) } as Field<(typeof LOG_LEVELS)[number]>,
};

export interface HubConfig {
  listen: ListenAddr;
  /** absolute */
  dataDir: string;
  db: string;
  heartbeatSec: number;
  handshakeTimeoutSec: number;
  maxFrameBytes: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** From TETHER_ADMIN_PASSWORD only: a password on a command line is visible to every user of the host. */
  adminPassword?: string;
}

export type HubFlags = Partial<Record<keyof typeof hubSpec, unknown>> & { config?: string };

export function loadHubConfig(flags: HubFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): HubConfig {
  const file = flags.config ?? env.TETHER_CONFIG;
  const { config: _c, ...rest } = flags;
  const c = resolveConfig(hubSpec, { flags: rest, env, ...(file ? { file } : {}) });
  const dataDir = resolve(cwd, c.data);
  return {
    listen: c.listen,
    dataDir,
    db: c.db || `sqlite:${join(dataDir, 'tether.db')}`,
    heartbeatSec: c.heartbeat,
    handshakeTimeoutSec: c.handshakeTimeout,
    maxFrameBytes: c.maxFrameBytes,
    logLevel: c.logLevel,
    ...(env.TETHER_ADMIN_PASSWORD ? { adminPassword: env.TETHER_ADMIN_PASSWORD } : {}),
  };
}
