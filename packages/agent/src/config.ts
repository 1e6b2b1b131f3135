import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CAPABILITIES, LOG_LEVELS, httpUrl, int, oneOf, resolveConfig, seconds, str, type Capability, type Field } from '@tether/protocol';
import { collectorNames } from './collectors/index.js';
import { CMDLINE_MODES, type CmdlineMode } from './collectors/redact.js';
import { normalizeFingerprint } from './tls.js';

const capabilityList = (raw: unknown): Capability[] => {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected a list of capabilities');
  for (const c of list) if (!CAPABILITIES.includes(c as Capability)) throw new Error(`unknown capability ${JSON.stringify(c)} (known: ${CAPABILITIES.join(', ')})`);
  return [...new Set(list as Capability[])];
};

const pathList = (raw: unknown): string[] => {
  if (!Array.isArray(raw)) throw new Error('expected a list of absolute paths');
  for (const p of raw) if (typeof p !== 'string' || !p.startsWith('/') || p.length > 4096) throw new Error(`not an absolute path: ${JSON.stringify(p)}`);
  return [...new Set(raw as string[])].map((p) => resolve(p));
};

const absPath = (raw: unknown): string => {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.length > 4096) throw new Error(`not an absolute path: ${JSON.stringify(raw)}`);
  return resolve(raw);
};

const bool = (raw: unknown): boolean => {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error('expected true or false');
};

/** Account names (as useradd allows them) or numeric ids; at most 64. */
const userList = (raw: unknown): string[] => {
  if (!Array.isArray(raw)) throw new Error('expected a list of user names');
  if (raw.length > 64) throw new Error(`at most 64 users (got ${raw.length})`);
  for (const u of raw) if (typeof u !== 'string' || !/^(?:\d{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/.test(u)) throw new Error(`not a user name: ${JSON.stringify(u)}`);
  return [...new Set(raw as string[])];
};

const collectorList = (raw: unknown): string[] => {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected a list of collector names');
  for (const c of list) if (!collectorNames.includes(c as never)) throw new Error(`unknown collector ${JSON.stringify(c)} (known: ${collectorNames.join(', ')})`);
  return list as string[];
};

/** `{ usage = "5s", processes = "30s" }` in TOML, or `usage=5s,processes=30s` in the environment. */
const intervalTable = (raw: unknown): Record<string, number> => {
  const obj = typeof raw === 'string' ? Object.fromEntries(raw.split(',').filter(Boolean).map((p) => p.split('=').map((s) => s.trim()))) : raw;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error('expected a table of collector = interval');
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (!collectorNames.includes(k as never)) throw new Error(`unknown collector ${JSON.stringify(k)}`);
    out[k] = Math.round(seconds(0.1, 7 * 86400)(v) * 1000);
  }
  return out;
};

/** An absolute path, or empty for none. */
const optPath = (raw: unknown): string => (raw === '' ? '' : absPath(raw));

/**
 * Resource limits for the agent's own service (JKStack's `limit.*`), written into a systemd drop-in
 * by `tether agent-unit --part limits`: `{ cpu = "20%", memory = "128M", io_read = "10M", io_write = "10M",
 * io_read_iops = 200, io_write_iops = 200 }`. Commands, jobs and terminals run outside these limits, in
 * transient scopes of their own (task_scopes, tasks/scope.ts).
 */
export interface AgentLimits {
  /** CPUQuota: percent of one CPU (200% = two) */
  cpu?: string;
  /** MemoryMax: bytes with an optional K/M/G/T suffix */
  memory?: string;
  /** IOReadBandwidthMax / IOWriteBandwidthMax: bytes per second, K/M/G/T suffix */
  ioRead?: string;
  ioWrite?: string;
  /** IOReadIOPSMax / IOWriteIOPSMax */
  ioReadIops?: number;
  ioWriteIops?: number;
}

const LIMIT_KEYS = { cpu: 'cpu', memory: 'memory', io_read: 'ioRead', io_write: 'ioWrite', io_read_iops: 'ioReadIops', io_write_iops: 'ioWriteIops' } as const;

/** `20%` (1 % to 100 × 100 %). */
export function parseCpuLimit(raw: unknown): string {
  const m = typeof raw === 'string' ? /^(\d{1,5})%$/.exec(raw.trim()) : null;
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 1 && n <= 10_000)) throw new Error(`expected a CPU share such as "20%" (1% to 10000%), got ${JSON.stringify(raw)}`);
  return `${n}%`;
}

/** `128M`, `1G`, `65536`: at least 1 MiB (an agent needs more), at most 1 PiB. */
export function parseByteSize(raw: unknown, what = 'a size', minBytes = 1 << 20): string {
  const m = typeof raw === 'string' || typeof raw === 'number' ? /^(\d{1,13})([KMGT]?)$/.exec(String(raw).trim().toUpperCase()) : null;
  const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ') : NaN;
  if (!m || !(bytes >= minBytes && bytes <= 2 ** 50)) throw new Error(`expected ${what} such as "128M" (bytes, K, M, G or T; at least ${minBytes >> 20 || 1}${minBytes >= 1 << 20 ? 'M' : ''}), got ${JSON.stringify(raw)}`);
  return `${m[1]}${m[2]}`;
}

const limitsTable = (raw: unknown): AgentLimits => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('expected a table such as { cpu = "20%", memory = "128M" }');
  const out: AgentLimits = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = (LIMIT_KEYS as Record<string, keyof AgentLimits>)[k];
    if (!key) throw new Error(`unknown limit ${JSON.stringify(k)} (known: ${Object.keys(LIMIT_KEYS).join(', ')})`);
    if (key === 'cpu') out.cpu = parseCpuLimit(v);
    else if (key === 'memory') out.memory = parseByteSize(v, 'a memory limit', 32 << 20);
    else if (key === 'ioRead' || key === 'ioWrite') out[key] = parseByteSize(v, 'a bandwidth', 1 << 10);
    else out[key] = int(1, 10_000_000)(v);
  }
  return out;
};

export const TASK_SCOPES = ['auto', 'off'] as const;
export type TaskScopes = (typeof TASK_SCOPES)[number];

const agentSpec = {
  hub: { toml: 'hub', env: 'TETHER_HUB', default: '', parse: httpUrl } as Field<string>,
  token: { toml: 'token', env: 'TETHER_TOKEN', default: '', parse: str({ max: 256 }) } as Field<string>,
  // A file holding the enrollment token (what install.sh writes: the config file is world-readable, this is not).
  // Read only while the agent is not enrolled, and removed once it is.
  tokenFile: { toml: 'token_file', env: 'TETHER_TOKEN_FILE', default: '', parse: optPath } as Field<string>,
  state: { toml: 'state', env: 'TETHER_STATE', default: '/var/lib/tether-agent', parse: str({ max: 1024 }) } as Field<string>,
  reconnectCap: { toml: 'reconnect_cap', env: 'TETHER_RECONNECT_CAP', default: 60, parse: seconds(0.1, 3600) } as Field<number>,
  logLevel: { toml: 'log_level', env: 'TETHER_LOG_LEVEL', default: 'info', parse: oneOf(LOG_LEVELS) } as Field<(typeof LOG_LEVELS)[number]>,
  // The capability lock: read from the host's own file, never from the hub. Monitoring only by default.
  capabilities: { toml: 'capabilities', default: ['metrics'], parse: capabilityList } as Field<Capability[]>,
  // Where the `files` capability may read and write; the same file, the same rule: the hub cannot widen it.
  fileRoots: { toml: 'file_roots', default: [], parse: pathList } as Field<string[]>,
  // setuid, setgid and sticky bits in modes the hub asks for (file only: the hub cannot widen it).
  fileSpecialModes: { toml: 'file_special_modes', default: false, parse: bool } as Field<boolean>,
  // Who a terminal may run as (file only, like the lock): the first is the default; empty: the agent's own user by default, any user if the hub names one (root agents only).
  terminalUsers: { toml: 'terminal_users', default: [], parse: userList } as Field<string[]>,
  terminalIdle: { toml: 'terminal_idle', env: 'TETHER_TERMINAL_IDLE', default: 1800, parse: seconds(10, 7 * 86400) } as Field<number>,
  // How process command lines are reported: every viewer of the host reads them.
  processCmdline: { toml: 'process_cmdline', env: 'TETHER_PROCESS_CMDLINE', default: 'redacted', parse: oneOf(CMDLINE_MODES) } as Field<CmdlineMode>,
  collectorsDisabled: { toml: 'collectors_disabled', env: 'TETHER_COLLECTORS_DISABLED', default: [], parse: collectorList } as Field<string[]>,
  collectorIntervals: { toml: 'collector_intervals', env: 'TETHER_COLLECTOR_INTERVALS', default: {}, parse: intervalTable } as Field<Record<string, number>>,
  backlog: { toml: 'backlog', env: 'TETHER_BACKLOG', default: 720, parse: int(0, 100_000) } as Field<number>,
  // Host managers (file only, like the lock they belong to).
  dockerSocket: { toml: 'docker_socket', default: '/var/run/docker.sock', parse: absPath } as Field<string>,
  dockerReadOnly: { toml: 'docker_read_only', default: false, parse: bool } as Field<boolean>,
  cronLogDir: { toml: 'cron_log_dir', default: '/var/log/tether-cron', parse: absPath } as Field<string>,
  hostsFile: { toml: 'hosts_file', default: '/etc/hosts', parse: absPath } as Field<string>,
  hubFingerprint: { toml: 'hub_fingerprint', env: 'TETHER_HUB_FINGERPRINT', default: '', parse: normalizeFingerprint } as Field<string>,
  // Whether the hub may upgrade this agent (tether agent upgrade). Off unless this host's admin says so:
  // new code from the hub is a new trust decision, which the capability lock leaves to the host.
  autoUpdate: { toml: 'auto_update', default: false, parse: bool } as Field<boolean>,
  // The agent's own service limits (systemd drop-in); read by `tether agent-unit`, not by the agent.
  limits: { toml: 'limits', default: {}, parse: limitsTable } as Field<AgentLimits>,
  // Commands, jobs and terminals in their own transient systemd scopes (auto: where the agent runs as root under systemd).
  taskScopes: { toml: 'task_scopes', env: 'TETHER_TASK_SCOPES', default: 'auto', parse: oneOf(TASK_SCOPES) } as Field<TaskScopes>,
};

export interface AgentConfig {
  hubUrl: string;
  token?: string;
  /** where the enrollment token came from when it was read from token_file (removed after enrolling) */
  tokenFile?: string;
  stateDir: string;
  reconnectCapSec: number;
  logLevel: (typeof LOG_LEVELS)[number];
  capabilities: Capability[];
  /** absolute, normalised; empty: no file access at all */
  fileRoots: string[];
  /** keep setuid, setgid and sticky bits in modes the hub asks for (uploads, fetches, mkdir); off: they are dropped */
  fileSpecialModes: boolean;
  /** the accounts a terminal may run as, the first by default; empty: any (the agent's own by default) */
  terminalUsers: string[];
  /** a terminal with no input or output for this long is closed */
  terminalIdleSec: number;
  /** process command lines sent to the hub: whole, with secret-looking values replaced, or the program alone */
  processCmdline: CmdlineMode;
  collectorsDisabled: string[];
  /** collector name → interval in ms */
  collectorIntervals: Record<string, number>;
  backlog: number;
  /** the Docker Engine API's unix socket (docker capability) */
  dockerSocket: string;
  /** Docker reads only: the agent refuses every Docker change */
  dockerReadOnly: boolean;
  /** where cron entries' run logs go */
  cronLogDir: string;
  /** the hosts file the `files` capability may edit */
  hostsFile: string;
  /** SHA-256 of the hub's TLS certificate (hex): when set, only that certificate is accepted */
  hubFingerprint?: string;
  limits: AgentLimits;
  /** accept upgrade tasks from the hub (auto_update in agent.toml; off by default) */
  autoUpdate: boolean;
  /**
   * `auto`: where the agent runs as root under systemd (and systemd-run is there), every command, job
   * and terminal starts in its own transient scope (tasks/scope.ts); `off`: as the agent's children.
   */
  taskScopes: TaskScopes;
}

export type AgentFlags = { hub?: string; token?: string; state?: string; reconnectCap?: unknown; logLevel?: string; config?: string; hubFingerprint?: string };

export function loadAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AgentConfig {
  const file = flags.config ?? env.TETHER_AGENT_CONFIG;
  const { config: _c, ...rest } = flags;
  const c = resolveConfig(agentSpec, { flags: rest, env, ...(file ? { file } : {}) });
  if (!c.hub) throw new Error('invalid configuration:\n  - the hub URL is required (--hub, TETHER_HUB or hub = "…" in the config file)');
  if (c.hubFingerprint && !c.hub.startsWith('https:')) throw new Error('invalid configuration:\n  - hub_fingerprint pins a TLS certificate: the hub URL must be https://');
  let token = c.token;
  if (!token && c.tokenFile) {
    try {
      token = readFileSync(c.tokenFile, 'utf8').trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`invalid configuration:\n  - token_file ${c.tokenFile}: ${(e as Error).message}`);
    }
    if (token && (token.length > 256 || /\s/.test(token))) throw new Error(`invalid configuration:\n  - token_file ${c.tokenFile}: not an enrollment token`);
  }
  return {
    hubUrl: c.hub,
    ...(token ? { token } : {}),
    ...(token && !c.token && c.tokenFile ? { tokenFile: c.tokenFile } : {}),
    stateDir: resolve(cwd, c.state),
    reconnectCapSec: c.reconnectCap,
    logLevel: c.logLevel,
    capabilities: c.capabilities,
    fileRoots: c.fileRoots,
    fileSpecialModes: c.fileSpecialModes,
    terminalUsers: c.terminalUsers,
    terminalIdleSec: c.terminalIdle,
    processCmdline: c.processCmdline,
    collectorsDisabled: c.collectorsDisabled,
    collectorIntervals: c.collectorIntervals,
    backlog: c.backlog,
    dockerSocket: c.dockerSocket,
    dockerReadOnly: c.dockerReadOnly,
    cronLogDir: c.cronLogDir,
    hostsFile: c.hostsFile,
    ...(c.hubFingerprint ? { hubFingerprint: c.hubFingerprint } : {}),
    limits: c.limits,
    autoUpdate: c.autoUpdate,
    taskScopes: c.taskScopes,
  };
}
