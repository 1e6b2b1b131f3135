/**
 * The catalogue of numeric series a host reports, and how each report flattens into them.
 * A series key is `family` or `family|dimension` (core, mount, interface, sensor…). The same
 * names serve the query API, the live stream and the Prometheus exposition (`tether_<family>`).
 */
import type { AgentSelf, ConnectionsSummary, GpuSummary, HostUsage, ProcessSummary, SensorsSummary } from '@tether/protocol';

export interface Family {
  help: string;
  /** Prometheus label for the dimension, when the family has one */
  dim?: string;
  type?: 'gauge';
}

export const FAMILIES: Record<string, Family> = {
  cpu_percent: { help: 'CPU time by mode, percent of all cores', dim: 'mode' },
  cpu_core_busy_percent: { help: 'Busy time of one logical CPU, percent', dim: 'core' },
  load1: { help: 'Load average over 1 minute' },
  load5: { help: 'Load average over 5 minutes' },
  load15: { help: 'Load average over 15 minutes' },
  memory_bytes: { help: 'Memory by kind (used = total - available)', dim: 'kind' },
  memory_used_percent: { help: 'Memory used, percent of total' },
  swap_bytes: { help: 'Swap by kind', dim: 'kind' },
  fs_size_bytes: { help: 'Filesystem size', dim: 'mount' },
  fs_used_bytes: { help: 'Filesystem space used', dim: 'mount' },
  fs_used_percent: { help: 'Filesystem space used, percent', dim: 'mount' },
  fs_inodes_used: { help: 'Filesystem inodes used', dim: 'mount' },
  fs_inodes_free: { help: 'Filesystem inodes free', dim: 'mount' },
  disk_read_bytes_per_second: { help: 'Bytes read per second from the device under a mount', dim: 'mount' },
  disk_write_bytes_per_second: { help: 'Bytes written per second to the device under a mount', dim: 'mount' },
  disk_read_iops: { help: 'Read operations per second', dim: 'mount' },
  disk_write_iops: { help: 'Write operations per second', dim: 'mount' },
  disk_io_in_progress: { help: 'I/O operations in progress', dim: 'mount' },
  disk_busy_percent: { help: 'Time the device was busy, percent', dim: 'mount' },
  net_rx_bytes_per_second: { help: 'Bytes received per second', dim: 'interface' },
  net_tx_bytes_per_second: { help: 'Bytes sent per second', dim: 'interface' },
  net_rx_packets_per_second: { help: 'Packets received per second', dim: 'interface' },
  net_tx_packets_per_second: { help: 'Packets sent per second', dim: 'interface' },
  net_rx_errors_per_second: { help: 'Receive errors per second', dim: 'interface' },
  net_tx_errors_per_second: { help: 'Transmit errors per second', dim: 'interface' },
  net_rx_drops_per_second: { help: 'Received packets dropped per second', dim: 'interface' },
  net_tx_drops_per_second: { help: 'Transmitted packets dropped per second', dim: 'interface' },
  processes: { help: 'Processes by state (total, running, blocked, zombie…)', dim: 'state' },
  threads: { help: 'Threads on the host' },
  tcp_connections: { help: 'TCP sockets by state', dim: 'state' },
  udp_sockets: { help: 'UDP sockets' },
  unix_sockets: { help: 'Unix sockets' },
  temperature_celsius: { help: 'Temperature sensor reading', dim: 'sensor' },
  fan_rpm: { help: 'Fan speed', dim: 'sensor' },
  battery_percent: { help: 'Battery charge', dim: 'supply' },
  power_watts: { help: 'Power draw of a supply', dim: 'supply' },
  ssh_sessions: { help: 'Open SSH sessions' },
  gpu_utilization_percent: { help: 'GPU utilisation', dim: 'gpu' },
  gpu_memory_used_bytes: { help: 'GPU memory used', dim: 'gpu' },
  gpu_memory_total_bytes: { help: 'GPU memory total', dim: 'gpu' },
  gpu_temperature_celsius: { help: 'GPU temperature', dim: 'gpu' },
  gpu_power_watts: { help: 'GPU power draw', dim: 'gpu' },
  agent_rss_bytes: { help: "The agent's resident memory" },
  agent_cpu_percent: { help: "The agent's CPU use, percent of one core" },
  agent_event_loop_lag_p99_ms: { help: "The agent's event-loop lag, 99th percentile" },
  agent_reconnects: { help: 'Times the agent reconnected since it started' },
  agent_heap_used_bytes: { help: "The agent's JavaScript heap in use" },
  agent_gc_pause_ms: { help: "The agent's garbage-collection pauses over its last self interval, in total" },
  agent_gc_pause_max_ms: { help: "The agent's longest garbage-collection pause over its last self interval" },
  agent_backlog_reports: { help: 'Reports the agent holds while the link is down' },
  agent_reports_dropped: { help: 'Reports the agent dropped (backlog full) since it started' },
  agent_received_bytes: { help: 'WebSocket bytes the agent received since it started' },
  agent_sent_bytes: { help: 'WebSocket bytes the agent sent since it started' },
};

/** Report kinds as stored in the raw tier. */
export const KIND = { usage: 0, processes: 1, connections: 2, sensors: 3, gpu: 4, self: 5 } as const;
export type SeriesKind = keyof typeof KIND;

export const MAX_SERIES_PER_REPORT = 2000;
const MAX_DIM = 200;

export function seriesKey(family: string, dim?: string | number): string {
  return dim === undefined ? family : `${family}|${String(dim).slice(0, MAX_DIM)}`;
}
export function parseKey(key: string): { family: string; dim?: string } {
  const i = key.indexOf('|');
  return i < 0 ? { family: key } : { family: key.slice(0, i), dim: key.slice(i + 1) };
}

/**
 * Series keys, made once and shared: every report of every host names the same few hundred keys
 * (cores, mounts, interfaces), and one shared string per key makes each later lookup of it (the
 * open minute, the layout, the alert rules) cheaper than a fresh string would. Bounded: past the
 * limit, new keys are built each time.
 */
const keyCache = new Map<string, Map<string | number, string>>();
let keyCacheSize = 0;
const KEY_CACHE_MAX = 50_000;
function dimKey(family: string, dim: string | number): string {
  let m = keyCache.get(family);
  if (!m) keyCache.set(family, (m = new Map()));
  let k = m.get(dim);
  if (k === undefined) {
    k = `${family}|${typeof dim === 'number' ? dim : dim.slice(0, MAX_DIM)}`;
    if (keyCacheSize < KEY_CACHE_MAX) {
      m.set(dim, k);
      keyCacheSize++;
    }
  }
  return k;
}

type Out = Record<string, number>;
/** Collects series for one report, bounded to MAX_SERIES_PER_REPORT. */
class Series {
  readonly o: Out = {};
  private n = 0;
  put(family: string, v: number | undefined, dim?: string | number): void {
    if (v === undefined || !Number.isFinite(v) || this.n >= MAX_SERIES_PER_REPORT) return;
    this.o[dim === undefined ? family : dimKey(family, dim)] = v;
    this.n++;
  }
}

export function flattenUsage(u: HostUsage): Out {
  const o = new Series();
  if (u.cpu) {
    for (const [mode, v] of Object.entries(u.cpu.total)) o.put('cpu_percent', v, mode);
    u.cpu.perCore.forEach((c, i) => o.put('cpu_core_busy_percent', c.busy, i));
  }
  o.put('load1', u.load.one);
  o.put('load5', u.load.five);
  o.put('load15', u.load.fifteen);
  const m = u.memory;
  for (const [kind, v] of [['total', m.totalBytes], ['used', m.usedBytes], ['free', m.freeBytes], ['available', m.availableBytes], ['buffers', m.buffersBytes], ['cached', m.cachedBytes], ['slab', m.slabBytes]] as const) o.put('memory_bytes', v, kind);
  o.put('memory_used_percent', m.usedPercent);
  o.put('swap_bytes', u.swap.totalBytes, 'total');
  o.put('swap_bytes', u.swap.usedBytes, 'used');
  o.put('swap_bytes', u.swap.freeBytes, 'free');
  for (const f of u.filesystems) {
    o.put('fs_size_bytes', f.sizeBytes, f.mount);
    o.put('fs_used_bytes', f.usedBytes, f.mount);
    o.put('fs_used_percent', f.usedPercent, f.mount);
    o.put('fs_inodes_used', f.inodesUsed, f.mount);
    o.put('fs_inodes_free', f.inodesFree, f.mount);
    if (f.io) {
      o.put('disk_read_bytes_per_second', f.io.readBytesPerSec, f.mount);
      o.put('disk_write_bytes_per_second', f.io.writeBytesPerSec, f.mount);
      o.put('disk_read_iops', f.io.readIops, f.mount);
      o.put('disk_write_iops', f.io.writeIops, f.mount);
      o.put('disk_io_in_progress', f.io.inProgress, f.mount);
      o.put('disk_busy_percent', f.io.busyPercent, f.mount);
    }
  }
  for (const n of u.interfaces) {
    o.put('net_rx_bytes_per_second', n.rxBytesPerSec, n.name);
    o.put('net_tx_bytes_per_second', n.txBytesPerSec, n.name);
    o.put('net_rx_packets_per_second', n.rxPacketsPerSec, n.name);
    o.put('net_tx_packets_per_second', n.txPacketsPerSec, n.name);
    o.put('net_rx_errors_per_second', n.rxErrorsPerSec, n.name);
    o.put('net_tx_errors_per_second', n.txErrorsPerSec, n.name);
    o.put('net_rx_drops_per_second', n.rxDropsPerSec, n.name);
    o.put('net_tx_drops_per_second', n.txDropsPerSec, n.name);
  }
  return o.o;
}

export function flattenProcesses(p: ProcessSummary): Out {
  const o = new Series();
  const t = p.totals;
  for (const [state, v] of [['total', t.processes], ['running', t.running], ['sleeping', t.sleeping], ['blocked', t.blocked], ['zombie', t.zombie], ['stopped', t.stopped]] as const) o.put('processes', v, state);
  o.put('threads', t.threads);
  return o.o;
}

export function flattenConnections(c: ConnectionsSummary): Out {
  const o = new Series();
  for (const [state, n] of Object.entries(c.counts.tcp)) o.put('tcp_connections', n, state.toLowerCase());
  o.put('udp_sockets', c.counts.udp);
  o.put('unix_sockets', c.counts.unix);
  return o.o;
}

export function flattenSensors(s: SensorsSummary): Out {
  const o = new Series();
  for (const t of s.temperatures) o.put('temperature_celsius', t.celsius, `${t.chip}/${t.label}`);
  for (const f of s.fans) o.put('fan_rpm', f.rpm, `${f.chip}/${f.label}`);
  for (const p of s.power) {
    o.put('battery_percent', p.capacityPercent, p.name);
    o.put('power_watts', p.powerWatts, p.name);
  }
  o.put('ssh_sessions', s.sshSessions.length);
  return o.o;
}

export function flattenGpu(g: GpuSummary): Out {
  const o = new Series();
  for (const x of g.gpus) {
    o.put('gpu_utilization_percent', x.utilizationPercent, x.index);
    o.put('gpu_memory_used_bytes', x.memoryUsedBytes, x.index);
    o.put('gpu_memory_total_bytes', x.memoryTotalBytes, x.index);
    o.put('gpu_temperature_celsius', x.temperatureCelsius, x.index);
    o.put('gpu_power_watts', x.powerWatts, x.index);
  }
  return o.o;
}

export function flattenSelf(s: AgentSelf): Out {
  const o = new Series();
  o.put('agent_rss_bytes', s.rssBytes);
  o.put('agent_cpu_percent', s.cpuPercent);
  o.put('agent_event_loop_lag_p99_ms', s.eventLoopLagMs.p99);
  o.put('agent_reconnects', s.counters.reconnects);
  o.put('agent_heap_used_bytes', s.heapUsedBytes);
  o.put('agent_gc_pause_ms', s.gc?.totalMs);
  o.put('agent_gc_pause_max_ms', s.gc?.maxMs);
  o.put('agent_backlog_reports', s.counters.backlog);
  o.put('agent_reports_dropped', s.counters.dropped);
  o.put('agent_received_bytes', s.counters.bytesIn);
  o.put('agent_sent_bytes', s.counters.bytesOut);
  return o.o;
}
