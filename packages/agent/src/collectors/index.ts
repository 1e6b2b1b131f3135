// The collector registry. One collector per file; adding one is a new file and one line in
// `collectorFactories`. Each has an enable switch and an interval, both overridable by name.
import { connectionsCollector, type ConnectionsOptions } from './connections.js';
import { containersCollector, type ContainersOptions } from './containers.js';
import { gpuCollector, type GpuOptions } from './gpu.js';
import { processesCollector, type ProcessesOptions } from './processes.js';
import { selfCollector } from './self.js';
import { sensorsCollector } from './sensors.js';
import { staticCollector } from './static.js';
import type { Collector, CollectorName, CollectorOutputs, SelfStatsHook } from './types.js';
import { unitsCollector, type UnitsOptions } from './units.js';
import { usageCollector, type UsageOptions } from './usage.js';
import { InetTables, ProcessTable, UserNames, type Roots } from './util.js';

export type * from './types.js';
export type { ConnectionsOptions, ContainersOptions, GpuOptions, ProcessesOptions, UnitsOptions, UsageOptions };

export interface CollectorsOptions {
  /** name → on/off; collectors not named keep their default (all on) */
  enabled?: Partial<Record<string, boolean>>;
  /** name → interval in ms; collectors not named keep their defaultIntervalMs */
  intervalsMs?: Partial<Record<string, number>>;
  procRoot?: string; // default /proc
  sysRoot?: string; // default /sys
  etcRoot?: string; // default /etc
  utmpPath?: string; // default /var/run/utmp
  selfStats?: SelfStatsHook;
  usage?: UsageOptions;
  processes?: ProcessesOptions;
  connections?: ConnectionsOptions;
  gpu?: GpuOptions;
  /**
   * The agent's capabilities: `containers` runs only with `docker`, `units` only with `systemd`
   * (what the local config allows the agent to look at). Absent: neither runs.
   */
  capabilities?: readonly string[];
  containers?: ContainersOptions;
  units?: UnitsOptions;
}

export interface ScheduledCollector<N extends CollectorName = CollectorName> {
  name: N;
  intervalMs: number;
  collector: Collector<CollectorOutputs[N]>;
}

interface Context {
  roots: Roots;
  opts: CollectorsOptions;
  users: UserNames;
  tables: InetTables;
  procs: ProcessTable;
}

type Factories = { [N in CollectorName]: (ctx: Context) => Collector<CollectorOutputs[N]> };

/** Every collector the agent has, in report order. */
export const collectorFactories: Factories = {
  static: (c) => staticCollector(c.roots),
  usage: (c) => usageCollector(c.roots, c.opts.usage),
  processes: (c) => processesCollector(c.roots, c.opts.processes, { users: c.users, tables: c.tables, procs: c.procs }),
  connections: (c) => connectionsCollector(c.roots, c.opts.connections, undefined, c.tables),
  sensors: (c) => sensorsCollector(c.roots, c.procs),
  gpu: (c) => gpuCollector(c.roots, c.opts.gpu),
  self: (c) => selfCollector(c.opts.selfStats),
  containers: (c) => containersCollector(c.opts.containers),
  units: (c) => unitsCollector(c.opts.units),
};

/** Collectors that look at something only a capability allows. */
const NEEDS_CAPABILITY: Partial<Record<CollectorName, string>> = { containers: 'docker', units: 'systemd' };

export const collectorNames = Object.keys(collectorFactories) as CollectorName[];

export function createCollectors(opts: CollectorsOptions = {}): ScheduledCollector[] {
  const roots: Roots = {
    procRoot: opts.procRoot ?? '/proc',
    sysRoot: opts.sysRoot ?? '/sys',
    etcRoot: opts.etcRoot ?? '/etc',
    utmpPath: opts.utmpPath ?? '/var/run/utmp',
  };
  // Collectors running in the same tick share what they both read: the socket tables and the
  // process table (per `now`), and the uid → name cache.
  const ctx: Context = {
    roots,
    opts,
    users: new UserNames(roots.etcRoot),
    tables: new InetTables(roots.procRoot),
    procs: new ProcessTable(roots.procRoot),
  };
  const out: ScheduledCollector[] = [];
  for (const name of collectorNames) {
    if (opts.enabled?.[name] === false) continue;
    const cap = NEEDS_CAPABILITY[name];
    if (cap && !opts.capabilities?.includes(cap)) continue;
    const collector = collectorFactories[name](ctx) as Collector<CollectorOutputs[CollectorName]>;
    const interval = opts.intervalsMs?.[name];
    out.push({ name, collector, intervalMs: interval !== undefined && interval > 0 ? interval : collector.defaultIntervalMs });
  }
  return out;
}

/** One report: whichever collectors produced data, keyed by name (the wire shape of MetricsReport). */
export type MetricsReport = Partial<CollectorOutputs>;

/**
 * Runs the given collectors once and gathers what they returned. A collector that throws is left
 * out of the report and its error returned beside it: one broken source must not silence the rest.
 */
export async function collectOnce(collectors: ScheduledCollector[], now = Date.now()): Promise<{ report: MetricsReport; errors: Partial<Record<CollectorName, string>> }> {
  const report: Record<string, unknown> = {};
  const errors: Partial<Record<CollectorName, string>> = {};
  for (const c of collectors) {
    try {
      const v = await c.collector.collect(now);
      if (v !== undefined) report[c.name] = v;
    } catch (e) {
      errors[c.name] = e instanceof Error ? e.message : String(e);
    }
  }
  return { report: report as MetricsReport, errors };
}

/**
 * Runs each collector on its own interval and hands every non-empty result to `onData`.
 * Returns a stop function.
 *
 * The intervals share one clock that starts when this is called: a collector runs at start + k ×
 * its interval, and every collector due at the same moment runs in the same tick with the same
 * `now`. So the 15 s and 30 s ones meet every 30 s and share what they read per `now` (the socket
 * tables for processes and connections, the process table for processes and sensors), and the
 * process wakes once for all of them. The clock starts at a moment of this agent's own, so a fleet
 * does not report in step. A tick that comes late runs what is due and keeps the schedule; a
 * collector still running from its last turn skips this one (a hanging nvidia-smi does not pile up).
 */
export function startCollectors(
  collectors: ScheduledCollector[],
  onData: <N extends CollectorName>(name: N, data: CollectorOutputs[N]) => void,
  onError: (name: CollectorName, err: unknown) => void = () => {},
): () => void {
  // the grid is on the monotonic clock (a wall-clock step does not move it); collectors get Date.now()
  const t0 = performance.now();
  const due = collectors.map(() => t0);
  const running = collectors.map(() => false);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const run = async (i: number, now: number) => {
    const c = collectors[i]!;
    if (running[i]) return;
    running[i] = true;
    try {
      const v = await c.collector.collect(now);
      if (v !== undefined && !stopped) onData(c.name, v as CollectorOutputs[typeof c.name]);
    } catch (e) {
      if (!stopped) onError(c.name, e);
    } finally {
      running[i] = false;
    }
  };

  const tick = () => {
    timer = undefined;
    if (stopped) return;
    const mono = performance.now();
    const now = Date.now();
    const toRun: number[] = [];
    for (let i = 0; i < collectors.length; i++) {
      if (due[i]! > mono) continue;
      toRun.push(i);
      // the next turn on this collector's grid after now (turns missed while late are not repeated)
      const every = collectors[i]!.intervalMs;
      due[i] = t0 + (Math.floor((mono - t0) / every) + 1) * every;
    }
    if (collectors.length) {
      timer = setTimeout(tick, Math.max(0, Math.min(...due) - performance.now()));
      timer.unref();
    }
    // Started one after another in this tick: each reads what it shares synchronously, with this `now`.
    for (const i of toRun) void run(i, now);
  };

  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

export { staticCollector, usageCollector, processesCollector, connectionsCollector, sensorsCollector, gpuCollector, selfCollector, containersCollector, unitsCollector };
export { fromListRow, withInspect, needsInspect, healthFromStatus } from './containers.js';
export { parseFailedUnits } from './units.js';
export { parseNvidiaSmiCsv } from './gpu.js';
export { parseUtmp } from './util.js';
