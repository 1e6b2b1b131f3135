import { join, resolve } from 'node:path';
import { parseAllowedHost } from './allowed-hosts.js';
import { parsePublicUrl } from './modules/artifacts/installer.js';
import { defaultArtifactsDir } from './modules/artifacts/paths.js';
import { ConfigError, LOG_LEVELS, bool, int, oneOf, parseListen, resolveConfig, seconds, str, type Field, type ListenAddr } from '@tether/protocol';

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
  // accounts and security
  tlsCert: { toml: 'tls_cert', env: 'TETHER_TLS_CERT', default: '', parse: str({ max: 1024 }) } as Field<string>,
  tlsKey: { toml: 'tls_key', env: 'TETHER_TLS_KEY', default: '', parse: str({ max: 1024 }) } as Field<string>,
  tlsSelfSigned: { toml: 'tls_self_signed', env: 'TETHER_TLS_SELF_SIGNED', default: false, parse: bool } as Field<boolean>,
  allowedOrigins: { toml: 'allowed_origins', env: 'TETHER_ALLOWED_ORIGINS', default: [], parse: originList } as Field<string[]>,
  allowedHosts: { toml: 'allowed_hosts', env: 'TETHER_ALLOWED_HOSTS', default: [], parse: hostList } as Field<string[]>,
  sessionTtl: { toml: 'session_ttl', env: 'TETHER_SESSION_TTL', default: 86400, parse: seconds(300, 90 * 86400) } as Field<number>,
  stepUpWindow: { toml: 'step_up_window', env: 'TETHER_STEP_UP_WINDOW', default: 600, parse: seconds(10, 86400) } as Field<number>,
  loginMaxFailures: { toml: 'login_max_failures', env: 'TETHER_LOGIN_MAX_FAILURES', default: 5, parse: int(1, 1000) } as Field<number>,
  lockoutDuration: { toml: 'lockout_duration', env: 'TETHER_LOCKOUT_DURATION', default: 900, parse: seconds(0, 365 * 86400) } as Field<number>,
  loginIpMaxFailures: { toml: 'login_ip_max_failures', env: 'TETHER_LOGIN_IP_MAX_FAILURES', default: 20, parse: int(1, 1_000_000) } as Field<number>,
  loginWindow: { toml: 'login_window', env: 'TETHER_LOGIN_WINDOW', default: 900, parse: seconds(1, 86400) } as Field<number>,
  alertEvalInterval: { toml: 'alert_eval_interval', env: 'TETHER_ALERT_EVAL_INTERVAL', default: 5, parse: seconds(0.05, 3600) } as Field<number>,
  alertRetryBase: { toml: 'alert_retry_base', env: 'TETHER_ALERT_RETRY_BASE', default: 5, parse: seconds(0.05, 3600) } as Field<number>,
  alertRetryAttempts: { toml: 'alert_retry_attempts', env: 'TETHER_ALERT_RETRY_ATTEMPTS', default: 6, parse: int(1, 50) } as Field<number>,
  alertSendTimeout: { toml: 'alert_send_timeout', env: 'TETHER_ALERT_SEND_TIMEOUT', default: 10, parse: seconds(0.1, 300) } as Field<number>,
  alertCertCheckInterval: { toml: 'alert_cert_check_interval', env: 'TETHER_ALERT_CERT_CHECK_INTERVAL', default: 3600, parse: seconds(0.1, 7 * 86400) } as Field<number>,
  alertHistoryRetention: { toml: 'alert_history_retention', env: 'TETHER_ALERT_HISTORY_RETENTION', default: 90 * 86400, parse: seconds(3600, 10 * 365 * 86400) } as Field<number>,
  dbPool: { toml: 'db_pool', env: 'TETHER_DB_POOL', default: 10, parse: int(1, 200) } as Field<number>,
  healthStall: { toml: 'health_stall', env: 'TETHER_HEALTH_STALL', default: 5, parse: seconds(0.1, 600) } as Field<number>,
  maxBodyBytes: { toml: 'max_body_bytes', env: 'TETHER_MAX_BODY_BYTES', default: 1024 * 1024, parse: int(1024, 1024 * 1024 * 1024) } as Field<number>,
  // the one-line install
  artifactsDir: { toml: 'artifacts_dir', env: 'TETHER_ARTIFACTS_DIR', default: '', parse: str({ max: 1024 }) } as Field<string>,
  nats: { toml: 'nats', env: 'TETHER_NATS', default: [], parse: parseNatsUrls } as Field<string[]>,
  clusterPrefix: { toml: 'cluster_prefix', env: 'TETHER_CLUSTER_PREFIX', default: 'tether', parse: str({ max: 64, pattern: /^[A-Za-z0-9_-]+$/, what: 'letters, digits, _ and - (a NATS subject token)' }) } as Field<string>,
  publicUrl: { toml: 'public_url', env: 'TETHER_PUBLIC_URL', default: '', parse: parsePublicUrl } as Field<string>,
};

/** `nats://host:port` servers of one NATS cluster: a list in TOML, comma-separated in the environment and on the command line. */
function parseNatsUrls(raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected nats://host:port or a list of them');
  if (list.length > 16) throw new Error('at most 16 NATS servers');
  return list.map((o) => {
    const s = String(o);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new Error(`expected nats://host:port, got ${JSON.stringify(s)}`);
    }
    if ((u.protocol !== 'nats:' && u.protocol !== 'tls:') || !u.hostname || (u.pathname && u.pathname !== '/') || u.search || u.hash) throw new Error(`expected nats://host:port (or tls://host:port) with nothing after it, got ${JSON.stringify(s)}`);
    return s.replace(/\/$/, '');
  });
}

/** Names the hub answers to besides its own (see allowed-hosts.ts): a list in TOML, comma-separated in the environment. */
function hostList(raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected a list of host names like hub.example.com');
  if (list.length > 256) throw new Error(`at most 256 names (got ${list.length})`);
  return [...new Set(list.map(parseAllowedHost))];
}

/** `https://console.example.com` entries: a list in TOML, comma-separated in the environment. */
function originList(raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected a list of origins like https://console.example.com');
  return list.map((o) => {
    let u: URL;
    try {
      u = new URL(String(o));
    } catch {
      throw new Error(`expected an origin like https://console.example.com, got ${JSON.stringify(o)}`);
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== String(o).replace(/\/$/, '')) throw new Error(`expected scheme://host[:port] with nothing after it, got ${JSON.stringify(o)}`);
    return u.origin;
  });
}

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
  /** TLS: files given, or a certificate generated on first start under <data>/tls; none: plain HTTP */
  tls: { kind: 'none' } | { kind: 'files'; cert: string; key: string } | { kind: 'self-signed' };
  /** origins besides the hub's own allowed to send cookie-authenticated writes and open /api/v1/live */
  allowedOrigins: string[];
  /** names the hub answers to besides IP addresses, localhost, its hostname, its certificate's and its origins' names; `*`: any */
  allowedHosts: string[];
  sessionTtlSec: number;
  stepUpWindowSec: number;
  login: { maxFailures: number; lockoutSec: number; ipMaxFailures: number; windowSec: number };
  maxBodyBytes: number;
  /** PostgreSQL connections this hub keeps (SQLite always has one) */
  dbPool: number;
  /** /api/v1/health answers 503 when a database round trip or an event-loop delay exceeds this */
  healthStallSec: number;
  /** alert evaluation: tick, notification retries (first delay, doubling; attempts), send timeout, certificate probes, history kept */
  alerts: { evalIntervalSec: number; retryBaseSec: number; retryAttempts: number; sendTimeoutSec: number; certCheckIntervalSec: number; historyRetentionSec: number };
  /** absolute: where the agent artifacts served at /dl/agent/ are (see modules/artifacts/paths.ts for the default) */
  artifactsDir: string;
  /** the base URL hosts reach the hub at (http(s)://host[:port][/path], no trailing slash); unset: each request's scheme and Host */
  publicUrl?: string;
  /**
   * Clustered mode (several hubs on one PostgreSQL): the NATS servers the hubs talk through, and the
   * subject prefix of this cluster (several clusters, or test runs, can share one NATS). Absent: one
   * hub alone, no NATS.
   */
  cluster?: { nats: string[]; prefix: string };
  /** From TETHER_ADMIN_PASSWORD only: a password on a command line is visible to every user of the host. */
  adminPassword?: string;
}

export type HubFlags = Partial<Record<keyof typeof hubSpec, unknown>> & { config?: string };

export function loadHubConfig(flags: HubFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): HubConfig {
  const file = flags.config ?? env.TETHER_CONFIG;
  const { config: _c, ...rest } = flags;
  const c = resolveConfig(hubSpec, { flags: rest, env, ...(file ? { file } : {}) });
  if (!c.tlsCert !== !c.tlsKey) throw new ConfigError(['TLS needs both a certificate and a key (tls_cert and tls_key)']);
  if (c.tlsCert && c.tlsSelfSigned) throw new ConfigError(['give either tls_cert/tls_key or tls_self_signed, not both']);
  const dataDir = resolve(cwd, c.data);
  const db = c.db || `sqlite:${join(dataDir, 'tether.db')}`;
  if (c.nats.length && !/^postgres(ql)?:/.test(db)) throw new ConfigError(['nats (clustered hubs) needs a PostgreSQL database that all hubs share: give db = "postgres://…" too']);
  return {
    listen: c.listen,
    dataDir,
    db,
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
    tls: c.tlsCert || c.tlsKey ? { kind: 'files', cert: resolve(cwd, c.tlsCert), key: resolve(cwd, c.tlsKey) } : c.tlsSelfSigned ? { kind: 'self-signed' } : { kind: 'none' },
    allowedOrigins: c.allowedOrigins,
    allowedHosts: c.allowedHosts,
    sessionTtlSec: c.sessionTtl,
    stepUpWindowSec: c.stepUpWindow,
    login: { maxFailures: c.loginMaxFailures, lockoutSec: c.lockoutDuration, ipMaxFailures: c.loginIpMaxFailures, windowSec: c.loginWindow },
    maxBodyBytes: c.maxBodyBytes,
    healthStallSec: c.healthStall,
    dbPool: c.dbPool,
    artifactsDir: c.artifactsDir ? resolve(cwd, c.artifactsDir) : defaultArtifactsDir(dataDir),
    ...(c.publicUrl ? { publicUrl: c.publicUrl } : {}),
    alerts: { evalIntervalSec: c.alertEvalInterval, retryBaseSec: c.alertRetryBase, retryAttempts: c.alertRetryAttempts, sendTimeoutSec: c.alertSendTimeout, certCheckIntervalSec: c.alertCertCheckInterval, historyRetentionSec: c.alertHistoryRetention },
    ...(c.nats.length ? { cluster: { nats: c.nats, prefix: c.clusterPrefix } } : {}),
    ...(env.TETHER_ADMIN_PASSWORD ? { adminPassword: env.TETHER_ADMIN_PASSWORD } : {}),
  };
}
