/**
 * What rules are made of: metric series (collected or derived), anomaly types, presets.
 */
import { FAMILIES, parseKey } from '../metrics/series.js';
import type { Op } from './evaluator.js';

export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];
export const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

export interface RuleScope {
  /** host ids; with a selector, a host matching either is in scope */
  hosts?: string[];
  /** label selector, e.g. `env=prod,role!=db` */
  selector?: string;
  /** host ids left out whatever else matches */
  exclude?: string[];
}

export interface Rule {
  id: string;
  name: string;
  kind: 'metric' | 'anomaly';
  /** metric rules: `family` (every dimension: one alert per mount/interface…), `family|*` (same), or `family|dim` */
  metric: string | null;
  anomaly: AnomalyType | null;
  op: Op;
  threshold: number;
  forSec: number;
  resolveForSec: number;
  aggregate: 'all' | 'avg';
  /** anomaly parameters: cert_expiry {endpoint, serverName?}; event types {windowSec} */
  params: Record<string, string | number>;
  scope: RuleScope;
  severity: Severity;
  enabled: boolean;
  /** channel ids; empty: every enabled channel */
  channels: string[];
  /** notifications for this rule are gathered this long and sent as one (many hosts, one message) */
  groupWindowSec: number;
  /** the preset this rule was made from (reset-presets restores it) */
  preset: string | null;
  createdAt: number;
  updatedAt: number;
}

// ---- derived series: figures the agent does not send as such but rules want -------------------

/** Computed from one usage sample's series; named like collected series. */
export const DERIVED: Record<string, { help: string; dim?: string }> = {
  fs_inodes_used_percent: { help: 'Filesystem inodes used, percent', dim: 'mount' },
  swap_used_percent: { help: 'Swap used, percent of total (0 without swap)' },
  load1_per_core: { help: 'Load average over 1 minute divided by the number of logical CPUs' },
  load5_per_core: { help: 'Load average over 5 minutes divided by the number of logical CPUs' },
  net_errors_per_second: { help: 'Receive plus transmit errors per second', dim: 'interface' },
};

export function derive(series: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  let cores = 0;
  for (const k in series) {
    const { family, dim } = parseKey(k);
    if (family === 'cpu_core_busy_percent') cores++;
    else if (family === 'fs_inodes_used' && dim !== undefined) {
      const free = series[`fs_inodes_free|${dim}`];
      const used = series[k]!;
      if (free !== undefined && used + free > 0) out[`fs_inodes_used_percent|${dim}`] = (100 * used) / (used + free);
    } else if (family === 'net_rx_errors_per_second' && dim !== undefined) {
      out[`net_errors_per_second|${dim}`] = series[k]! + (series[`net_tx_errors_per_second|${dim}`] ?? 0);
    }
  }
  const total = series['swap_bytes|total'];
  if (total !== undefined) out['swap_used_percent'] = total > 0 ? (100 * (series['swap_bytes|used'] ?? 0)) / total : 0;
  if (cores > 0) {
    if (series['load1'] !== undefined) out['load1_per_core'] = series['load1'] / cores;
    if (series['load5'] !== undefined) out['load5_per_core'] = series['load5'] / cores;
  }
  return out;
}

/** `family`, `family|*` or `family|dim` → the family and the one dimension wanted (undefined: all). */
export function parseMetric(metric: string): { family: string; dim?: string } | { error: string } {
  const { family, dim } = parseKey(metric);
  const f = FAMILIES[family] ?? DERIVED[family];
  if (!f) return { error: `unknown metric family ${JSON.stringify(family)} (see GET /api/v1/alerts/catalog)` };
  if (dim !== undefined && dim !== '*' && !f.dim) return { error: `${family} has no dimension` };
  return dim === undefined || dim === '*' ? { family } : { family, dim };
}

// ---- anomalies --------------------------------------------------------------------------------

export type AnomalyType = 'host_offline' | 'clock_skew' | 'cert_expiry' | 'container_restart_loop' | 'container_oom' | 'container_unhealthy' | 'systemd_unit_failed';

export interface AnomalyDef {
  help: string;
  /** level: a source reports the current value; event: a source reports occurrences, counted over params.windowSec */
  input: { level: string } | { event: string };
  op: Op;
  threshold: number;
  /** whether the rule may set its own threshold */
  thresholdEditable: boolean;
  /** who feeds it in this hub; `null`: no source registered yet (see AlertService.addSource) */
  builtIn: string | null;
  unit: string;
}

export const ANOMALIES: Record<AnomalyType, AnomalyDef> = {
  host_offline: { help: 'The host’s agent is disconnected', input: { level: 'host_offline' }, op: '>=', threshold: 1, thresholdEditable: false, builtIn: 'agent link (online/offline)', unit: '' },
  clock_skew: { help: 'The host’s clock differs from the hub’s by more than the threshold (seconds), measured on every live report', input: { level: 'clock_skew_seconds' }, op: '>', threshold: 30, thresholdEditable: true, builtIn: 'report timestamps', unit: 's' },
  cert_expiry: { help: 'The certificate served at params.endpoint (host:port) expires within the threshold (days); probed by the hub', input: { level: 'cert_days_left' }, op: '<', threshold: 14, thresholdEditable: true, builtIn: 'hub TLS probe', unit: 'days' },
  container_restart_loop: { help: 'A container restarted at least the threshold times within params.windowSec', input: { event: 'container_restart' }, op: '>=', threshold: 5, thresholdEditable: true, builtIn: null, unit: 'restarts' },
  container_oom: { help: 'A container was killed for running out of memory within params.windowSec', input: { event: 'container_oom' }, op: '>=', threshold: 1, thresholdEditable: true, builtIn: null, unit: 'kills' },
  container_unhealthy: { help: 'A container’s health check reports unhealthy', input: { level: 'container_unhealthy' }, op: '>=', threshold: 1, thresholdEditable: false, builtIn: null, unit: '' },
  systemd_unit_failed: { help: 'A systemd unit is in the failed state', input: { level: 'unit_failed' }, op: '>=', threshold: 1, thresholdEditable: false, builtIn: null, unit: '' },
};
export const ANOMALY_TYPES = Object.keys(ANOMALIES) as AnomalyType[];

/** cert_expiry's `params.endpoint` for the hub's own certificate (read from its file, no probe; nothing when the hub serves plain HTTP). */
export const HUB_ENDPOINT = 'hub';

// ---- presets ----------------------------------------------------------------------------------

export type RuleInput = Omit<Rule, 'id' | 'createdAt' | 'updatedAt' | 'preset'>;

const base = { params: {}, scope: {}, enabled: true, channels: [], groupWindowSec: 60, aggregate: 'all' as const };
const anomaly = (a: AnomalyType, rest: Omit<RuleInput, 'kind' | 'metric' | 'anomaly' | 'op' | 'threshold' | 'params' | 'scope' | 'enabled' | 'channels' | 'groupWindowSec' | 'aggregate'> & { threshold?: number; params?: RuleInput['params'] }): RuleInput => ({
  ...base,
  kind: 'anomaly',
  metric: null,
  anomaly: a,
  op: ANOMALIES[a].op,
  threshold: ANOMALIES[a].threshold,
  ...rest,
});
/**
 * The rules a hub offers; `reset-presets` puts these back as they are here. Each is offered once
 * (a new hub gets all of them, an older hub the ones added since; one an operator deleted stays
 * deleted). They watch every host, and each fires only where its data exists: the container rules
 * on hosts whose agents report containers (capability docker), the unit rule on those reporting
 * systemd units, the hub certificate rule on a hub that serves TLS.
 */
export const PRESETS: Record<string, RuleInput> = {
  cpu: { ...base, name: 'CPU busy', kind: 'metric', metric: 'cpu_percent|busy', anomaly: null, op: '>', threshold: 90, forSec: 300, resolveForSec: 120, aggregate: 'avg', severity: 'warning' },
  memory: { ...base, name: 'Memory used', kind: 'metric', metric: 'memory_used_percent', anomaly: null, op: '>', threshold: 90, forSec: 300, resolveForSec: 120, severity: 'warning' },
  disk: { ...base, name: 'Disk space used', kind: 'metric', metric: 'fs_used_percent', anomaly: null, op: '>', threshold: 90, forSec: 300, resolveForSec: 300, severity: 'critical' },
  inode: { ...base, name: 'Inodes used', kind: 'metric', metric: 'fs_inodes_used_percent', anomaly: null, op: '>', threshold: 90, forSec: 300, resolveForSec: 300, severity: 'critical' },
  load: { ...base, name: 'Load per CPU', kind: 'metric', metric: 'load5_per_core', anomaly: null, op: '>', threshold: 2, forSec: 600, resolveForSec: 300, severity: 'warning' },
  swap: { ...base, name: 'Swap used', kind: 'metric', metric: 'swap_used_percent', anomaly: null, op: '>', threshold: 80, forSec: 600, resolveForSec: 300, severity: 'warning' },
  host_offline: { ...base, name: 'Host offline', kind: 'anomaly', metric: null, anomaly: 'host_offline', op: '>=', threshold: 1, forSec: 120, resolveForSec: 0, severity: 'critical' },
  network_errors: { ...base, name: 'Network errors', kind: 'metric', metric: 'net_errors_per_second', anomaly: null, op: '>', threshold: 10, forSec: 300, resolveForSec: 120, aggregate: 'avg', severity: 'warning' },
  container_restart_loop: anomaly('container_restart_loop', { name: 'Container restart loop', threshold: 5, params: { windowSec: 600 }, forSec: 0, resolveForSec: 0, severity: 'critical' }),
  container_oom: anomaly('container_oom', { name: 'Container killed out of memory', params: { windowSec: 600 }, forSec: 0, resolveForSec: 0, severity: 'warning' }),
  container_unhealthy: anomaly('container_unhealthy', { name: 'Container unhealthy', forSec: 60, resolveForSec: 0, severity: 'warning' }),
  systemd_unit_failed: anomaly('systemd_unit_failed', { name: 'systemd unit failed', forSec: 60, resolveForSec: 0, severity: 'warning' }),
  clock_skew: anomaly('clock_skew', { name: 'Clock skew', forSec: 300, resolveForSec: 120, severity: 'warning' }),
  hub_certificate: anomaly('cert_expiry', { name: 'Hub certificate expiry', params: { endpoint: HUB_ENDPOINT }, forSec: 0, resolveForSec: 0, severity: 'warning' }),
};

/** The presets the first hubs were given (migration 0301): offered already on every database. */
export const FIRST_PRESETS = ['cpu', 'memory', 'disk', 'inode', 'load', 'swap', 'host_offline', 'network_errors'];
export const presetId = (key: string) => `preset-${key.replace(/_/g, '-')}`;
