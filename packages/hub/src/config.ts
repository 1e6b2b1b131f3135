import { join, resolve } from 'node:path';
import { LOG_LEVELS, bool, int, oneOf, parseListen, resolveConfig, seconds, str, type Field, type ListenAddr } from '@tether/protocol';

const hubSpec = {
  listen: { toml: 'listen', env: 'TETHER_LISTEN', default: { host: '127.0.0.1', port: 8080 }, parse: parseListen } as Field<ListenAddr>,
  data: { toml: 'data', env: 'TETHER_DATA', default: 'data', parse: str({ max: 1024 }) } as Field<string>,
  db: { toml: 'db', env: 'TETHER_DB', default: '', parse: str({ max: 2048, pattern: /^(sqlite:|postgres(ql)?:\/\/)/, what: 'sqlite:PATH or postgres://…' }) } as Field<string>,
  heartbeat: { toml: 'heartbeat', env: 'TETHER_HEARTBEAT', default: 10, parse: seconds(0.05, 3600) } as Field<number>,
  handshakeTimeout: { toml: 'handshake_timeout', env: 'TETHER_HANDSHAKE_TIMEOUT', default: 60, parse: seconds(0.1, 3600) } as Field<number>,
  maxFrameBytes: { toml: 'max_frame_bytes', env: 'TETHER_MAX_FRAME_BYTES', default: 1024 * 1024, parse: int(4096, 64 * 1024 * 1024) } as Field<number>,
  logLevel: { toml: 'log_level', env: 'TETHER_LOG_LEVEL', default: 'info', parse: oneOf(LOG_LEVELS) } as Field<(typeof LOG_LEVELS)[number]>,
  retentionRaw: { toml: 'retention_raw', env: 'TETHER_RETENTION_RAW', default: 86400, parse: seconds(60, 400 * 86400) } as Field<number>,
  retention1m: { toml: 'retention_1m', env: 'TETHER_RETENTION_1M', default: 30 * 86400, parse: seconds(3600, 5 * 365 * 86400) } as Field<number>,
  retention1h: { toml: 'retention_1h', env: 'TETHER_RETENTION_1H', default: 365 * 86400, parse: seconds(86400, 20 * 365 * 86400) } as Field<number>,
  retentionTop: { toml: 'retention_top', env: 'TETHER_RETENTION_TOP', default: 30 * 86400, parse: seconds(3600, 5 * 365 * 86400) } as Field<number>,
  topN: { toml: 'top_n', env: 'TETHER_TOP_N', default: 10, parse: int(1, 100) } as Field<number>,
  taskLostAfter: { toml: 'task_lost_after', env: 'TETHER_TASK_LOST_AFTER', default: 600, parse: seconds(1, 30 * 86400) } as Field<number>,
  reconnectGrace: { toml: 'reconnect_grace', env: 'TETHER_RECONNECT_GRACE', default: 30, parse: seconds(0, 3600) } as Field<number>,
  maxUploadBytes: { toml: 'max_upload_bytes', env: 'TETHER_MAX_UPLOAD_BYTES', default: 16 * 1024 ** 3, parse: int(0, 2 ** 50) } as Field<number>,
  metricsOpen: { toml: 'metrics_open', env: 'TETHER_METRICS_OPEN', default: false, parse: bool } as Field<boolean>,
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
  retention: { rawSec: number; m1Sec: number; h1Sec: number; topSec: number };
  topN: number;
  /** a task whose host stays disconnected this long is marked lost */
  taskLostAfterSec: number;
  /** after a start, tasks waiting for a host are not marked offline for this long (agents are reconnecting) */
  reconnectGraceSec: number;
  /** largest file moved through the hub in one upload or download */
  maxUploadBytes: number;
  /** serve GET /metrics without a login (for a Prometheus on a trusted network) */
  metricsOpen: boolean;
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
    retention: { rawSec: c.retentionRaw, m1Sec: c.retention1m, h1Sec: c.retention1h, topSec: c.retentionTop },
    topN: c.topN,
    taskLostAfterSec: c.taskLostAfter,
    reconnectGraceSec: c.reconnectGrace,
    maxUploadBytes: c.maxUploadBytes,
    metricsOpen: c.metricsOpen,
    ...(env.TETHER_ADMIN_PASSWORD ? { adminPassword: env.TETHER_ADMIN_PASSWORD } : {}),
  };
}
