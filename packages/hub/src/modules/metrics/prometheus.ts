/**
 * GET /metrics: the fleet's latest values and the hub's own figures in the Prometheus text format.
 * Names follow Prometheus conventions (base units: percentages become ratios, milliseconds seconds).
 *
 * Rates (`tether_net_rx_bytes_per_second`…) are what the agent measured over its last interval; a
 * scrape sees one of them and misses the rest. The cumulative counters the agent reads from
 * /proc/net/dev and /proc/diskstats are exported too, under node_exporter's names and units
 * (`node_network_receive_bytes_total{device=…}`, `node_disk_read_bytes_total`…), so `rate()` and
 * `increase()` over any range count every byte, and dashboards made for node_exporter read them.
 */
import { cpuUsage, memoryUsage } from 'node:process';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

/** The hub's event-loop delay since start: stalls here delay every agent and every API call. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

/** Garbage-collection pauses of the hub, by kind: long ones stall every connection at once. */
const gc = { major: { count: 0, sum: 0, max: 0 }, minor: { count: 0, sum: 0, max: 0 } };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? gc.minor : gc.major;
    kind.count++;
    kind.sum += e.duration;
    kind.max = Math.max(kind.max, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
import type { Host } from '../hosts/store.js';
import type { AgentLink } from '../agents/link.js';
import { forEachLatest, latestUsage, type MetricsService } from './service.js';
import { FAMILIES, parseKey } from './series.js';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function promFamily(family: string): { name: string; scale: number } {
  if (family.endsWith('_percent')) return { name: `tether_${family.slice(0, -'_percent'.length)}_ratio`, scale: 0.01 };
  if (family.endsWith('_ms')) return { name: `tether_${family.slice(0, -'_ms'.length)}_seconds`, scale: 0.001 };
  return { name: `tether_${family}`, scale: 1 };
}

const RESERVED = new Set(['host', 'host_id', ...Object.values(FAMILIES).map((f) => f.dim).filter((d): d is string => !!d)]);

/** Host labels as Prometheus labels: sanitised, and prefixed where they would clash with ours. */
export function hostLabelPairs(labels: Record<string, string>): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(labels)) {
    let name = k.replace(/[^a-zA-Z0-9_]/g, '_');
    if (!/^[a-zA-Z_]/.test(name) || name.startsWith('__') || RESERVED.has(name)) name = `label_${name.replace(/^_+/, '')}`;
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(`${name}="${esc(v)}"`);
  }
  return out.join(',');
}

type NetTotals = Pick<NonNullable<ReturnType<typeof latestUsage>>['interfaces'][number], 'rxBytesTotal' | 'txBytesTotal' | 'rxPacketsTotal' | 'txPacketsTotal' | 'rxErrorsTotal' | 'txErrorsTotal' | 'rxDropsTotal' | 'txDropsTotal'>;
type DiskTotals = { readBytesTotal: number; writeBytesTotal: number; readsTotal: number; writesTotal: number };

/** node_exporter's counters (netdev and diskstats collectors), from the usage report's totals. */
export const COUNTERS: { name: string; help: string; label: 'device'; net?: keyof NetTotals; disk?: keyof DiskTotals }[] = [
  { name: 'node_network_receive_bytes_total', help: 'Network device statistic receive_bytes.', label: 'device', net: 'rxBytesTotal' },
  { name: 'node_network_transmit_bytes_total', help: 'Network device statistic transmit_bytes.', label: 'device', net: 'txBytesTotal' },
  { name: 'node_network_receive_packets_total', help: 'Network device statistic receive_packets.', label: 'device', net: 'rxPacketsTotal' },
  { name: 'node_network_transmit_packets_total', help: 'Network device statistic transmit_packets.', label: 'device', net: 'txPacketsTotal' },
  { name: 'node_network_receive_errs_total', help: 'Network device statistic receive_errs.', label: 'device', net: 'rxErrorsTotal' },
  { name: 'node_network_transmit_errs_total', help: 'Network device statistic transmit_errs.', label: 'device', net: 'txErrorsTotal' },
  { name: 'node_network_receive_drop_total', help: 'Network device statistic receive_drop.', label: 'device', net: 'rxDropsTotal' },
  { name: 'node_network_transmit_drop_total', help: 'Network device statistic transmit_drop.', label: 'device', net: 'txDropsTotal' },
  { name: 'node_disk_read_bytes_total', help: 'The total number of bytes read successfully (block devices under a mounted filesystem).', label: 'device', disk: 'readBytesTotal' },
  { name: 'node_disk_written_bytes_total', help: 'The total number of bytes written successfully (block devices under a mounted filesystem).', label: 'device', disk: 'writeBytesTotal' },
  { name: 'node_disk_reads_completed_total', help: 'The total number of reads completed successfully (block devices under a mounted filesystem).', label: 'device', disk: 'readsTotal' },
  { name: 'node_disk_writes_completed_total', help: 'The total number of writes completed successfully (block devices under a mounted filesystem).', label: 'device', disk: 'writesTotal' },
];

/** Hosts rendered between two turns of the event loop, and lines per chunk written. */
const HOSTS_PER_TURN = 250;
const LINES_PER_CHUNK = 5000;
const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * The exposition, as chunks of text. A fleet of 10,000 hosts is over a million lines: rendered in
 * one piece it held the hub's event loop for seconds (every agent and API call waited), so this
 * yields to the event loop every few hundred hosts and every few thousand lines, and the reply is
 * streamed. Label text is escaped once per host and per series key, not once per line.
 */
export async function* renderPrometheus(hosts: Host[], metrics: MetricsService, link: AgentLink, extra: { liveClients: number }): AsyncGenerator<string> {
  const byFamily = new Map<string, string[]>();
  // series key → the family and the label text it adds (the same keys recur on every host)
  const keyInfo = new Map<string, { family: string; scale: number; dimPair: string } | null>();
  const info = (key: string) => {
    let k = keyInfo.get(key);
    if (k !== undefined) return k;
    const { family, dim } = parseKey(key);
    const f = FAMILIES[family];
    k = f ? { family, scale: promFamily(family).scale, dimPair: f.dim && dim !== undefined ? `,${f.dim}="${esc(dim)}"` : '' } : null;
    keyInfo.set(key, k);
    return k;
  };
  const counters: string[][] = COUNTERS.map(() => []);
  const cpus: string[] = [];
  const agents: string[] = [];
  let n = 0;
  for (const h of hosts) {
    if (++n % HOSTS_PER_TURN === 0) await turn();
    const hl = hostLabelPairs(h.labels);
    const base = `host="${esc(h.hostname)}",host_id="${esc(h.id)}"`;
    const tail = hl ? ',' + hl : '';
    const logical = h.facts?.cpu?.logicalCores;
    if (logical) cpus.push(`{${base}${tail}} ${logical}`);
    const st = metrics.latest.get(h.id);
    if (h.agentVersion) agents.push(`{${base},version="${esc(h.agentVersion)}",runtime="${esc(st?.self?.runtime ?? '')}"${tail}} 1`);
    if (!st) continue;
    forEachLatest(st, (key, value) => {
      const k = info(key);
      if (!k || !Number.isFinite(value)) return;
      let lines = byFamily.get(k.family);
      if (!lines) byFamily.set(k.family, (lines = []));
      lines.push(`{${base}${k.dimPair}${tail}} ${value * k.scale}`);
    });
    const u = latestUsage(st);
    if (!u) continue;
    for (const i of u.interfaces) {
      const labels = `{${base},device="${esc(i.name)}"${tail}} `;
      COUNTERS.forEach((c, j) => c.net && Number.isFinite(i[c.net]) && counters[j]!.push(labels + i[c.net]));
    }
    // Several mounts may sit on one device (bind mounts, subvolumes): its counters once.
    const devices = new Set<string>();
    for (const f of u.filesystems) {
      const io = f.io;
      if (!io || devices.has(io.device)) continue;
      devices.add(io.device);
      const labels = `{${base},device="${esc(io.device)}"${tail}} `;
      COUNTERS.forEach((c, j) => c.disk && Number.isFinite(io[c.disk]) && counters[j]!.push(labels + io[c.disk]));
    }
  }
  for (const family of Object.keys(FAMILIES)) {
    const lines = byFamily.get(family);
    if (!lines?.length) continue;
    const { name } = promFamily(family);
    let chunk = `# HELP ${name} ${FAMILIES[family]!.help}\n# TYPE ${name} gauge\n`;
    for (let i = 0; i < lines.length; i += LINES_PER_CHUNK) {
      const end = Math.min(lines.length, i + LINES_PER_CHUNK);
      for (let j = i; j < end; j++) chunk += name + lines[j] + '\n';
      yield chunk;
      chunk = '';
      await turn();
    }
    byFamily.delete(family);
  }
  for (let j = 0; j < COUNTERS.length; j++) {
    const lines = counters[j]!;
    if (!lines.length) continue;
    const c = COUNTERS[j]!;
    let chunk = `# HELP ${c.name} ${c.help}\n# TYPE ${c.name} counter\n`;
    for (let i = 0; i < lines.length; i += LINES_PER_CHUNK) {
      const end = Math.min(lines.length, i + LINES_PER_CHUNK);
      for (let k = i; k < end; k++) chunk += c.name + lines[k] + '\n';
      yield chunk;
      chunk = '';
      await turn();
    }
  }
  if (agents.length) yield `# HELP tether_agent_info The agent's version and the runtime it runs on (1 per host)\n# TYPE tether_agent_info gauge\n${agents.map((l) => 'tether_agent_info' + l).join('\n')}\n`;
  if (cpus.length) yield `# HELP tether_cpus Logical CPUs of the host (the CPU count)\n# TYPE tether_cpus gauge\n${cpus.map((l) => 'tether_cpus' + l).join('\n')}\n`;
  const out: string[] = [];
  const hostUp = hosts.map((h) => `tether_host_up{host="${esc(h.hostname)}",host_id="${esc(h.id)}"} ${link.isOnline(h.id) ? 1 : 0}`);
  const lat = metrics.ingestLatency;
  const cpu = cpuUsage();
  const mem = memoryUsage();
  const refused = Object.entries(link.stats.refused).map(([code, n]) => `tether_hub_agents_refused_total{code="${code}"} ${n}`);
  out.push(
    '# HELP tether_host_up Whether the host’s agent is connected (1) or not (0)'.replace('’', "'"),
    '# TYPE tether_host_up gauge',
    ...hostUp,
    '# HELP tether_hub_agents_online Agents connected to this hub',
    '# TYPE tether_hub_agents_online gauge',
    `tether_hub_agents_online ${link.onlineCount}`,
    '# HELP tether_hub_hosts Hosts in the inventory (not revoked)',
    '# TYPE tether_hub_hosts gauge',
    `tether_hub_hosts ${hosts.length}`,
    '# HELP tether_hub_handshakes_total Successful agent handshakes',
    '# TYPE tether_hub_handshakes_total counter',
    `tether_hub_handshakes_total ${link.stats.handshakesOk}`,
    '# HELP tether_hub_agents_refused_total Refused agent connections by reason',
    '# TYPE tether_hub_agents_refused_total counter',
    ...(refused.length ? refused : ['tether_hub_agents_refused_total{code="none"} 0']),
    '# HELP tether_hub_reports_total Reports received from agents',
    '# TYPE tether_hub_reports_total counter',
    `tether_hub_reports_total ${metrics.counters.reports}`,
    '# HELP tether_hub_samples_late_total Samples that arrived after their minute closed (recomputed from raw)',
    '# TYPE tether_hub_samples_late_total counter',
    `tether_hub_samples_late_total ${metrics.counters.lateSamples}`,
    '# HELP tether_hub_samples_too_old_total Backlog samples dropped because their hour is past the 1-minute retention',
    '# TYPE tether_hub_samples_too_old_total counter',
    `tether_hub_samples_too_old_total ${metrics.counters.tooOld}`,
    '# HELP tether_hub_write_errors_total Failed metric writes',
    '# TYPE tether_hub_write_errors_total counter',
    `tether_hub_write_errors_total ${metrics.counters.writeErrors}`,
    '# HELP tether_hub_ingest_latency_seconds Time from a report arriving to its samples being committed',
    '# TYPE tether_hub_ingest_latency_seconds summary',
    `tether_hub_ingest_latency_seconds{quantile="0.5"} ${lat.quantile(0.5) / 1000}`,
    `tether_hub_ingest_latency_seconds{quantile="0.99"} ${lat.quantile(0.99) / 1000}`,
    `tether_hub_ingest_latency_seconds_count ${lat.count}`,
    `tether_hub_ingest_latency_seconds_sum ${lat.sumMs / 1000}`,
    '# HELP tether_hub_live_clients Browsers subscribed to live updates',
    '# TYPE tether_hub_live_clients gauge',
    `tether_hub_live_clients ${extra.liveClients}`,
    '# HELP tether_hub_event_loop_delay_seconds Event-loop delay of the hub process since it started',
    '# TYPE tether_hub_event_loop_delay_seconds summary',
    `tether_hub_event_loop_delay_seconds{quantile="0.5"} ${loopDelay.percentile(50) / 1e9}`,
    `tether_hub_event_loop_delay_seconds{quantile="0.99"} ${loopDelay.percentile(99) / 1e9}`,
    `tether_hub_event_loop_delay_seconds{quantile="1"} ${loopDelay.max / 1e9}`,
    `tether_hub_event_loop_delay_seconds_count ${loopDelay.count}`,
    `tether_hub_event_loop_delay_seconds_sum ${(loopDelay.mean * loopDelay.count) / 1e9 || 0}`,
    '# HELP tether_hub_gc_pause_seconds Garbage-collection pauses of the hub process since it started',
    '# TYPE tether_hub_gc_pause_seconds summary',
    `tether_hub_gc_pause_seconds_count{kind="major"} ${gc.major.count}`,
    `tether_hub_gc_pause_seconds_sum{kind="major"} ${gc.major.sum / 1000}`,
    `tether_hub_gc_pause_seconds_count{kind="minor"} ${gc.minor.count}`,
    `tether_hub_gc_pause_seconds_sum{kind="minor"} ${gc.minor.sum / 1000}`,
    '# HELP tether_hub_gc_pause_max_seconds Longest garbage-collection pause since the hub started',
    '# TYPE tether_hub_gc_pause_max_seconds gauge',
    `tether_hub_gc_pause_max_seconds{kind="major"} ${gc.major.max / 1000}`,
    `tether_hub_gc_pause_max_seconds{kind="minor"} ${gc.minor.max / 1000}`,
    '# HELP process_resident_memory_bytes Resident memory of the hub process',
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${mem.rss}`,
    '# HELP process_cpu_seconds_total CPU time of the hub process',
    '# TYPE process_cpu_seconds_total counter',
    `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
  );
  yield out.join('\n') + '\n';
}
