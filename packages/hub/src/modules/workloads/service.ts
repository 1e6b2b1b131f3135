/**
 * Containers and systemd units as the agents report them (`report.containers`, `report.units`):
 * the latest list per host, for the console, and the anomaly signals the alerts module turns into
 * alerts. The agent only reads and sends; deciding what is an anomaly happens here.
 *
 *   a container's restart count went up (or it started again) → event container_restart, once per restart
 *   a container was OOM-killed (newly so)                      → event container_oom
 *   a container's health check says unhealthy                  → level container_unhealthy 1 (0 when it no longer does, or is gone)
 *   a unit is in the failed state                               → level unit_failed 1 (0 when it leaves the failed list)
 *
 * A complete list goes out as `levels` (everything not in it is 0), so that alerts restored after a
 * hub restart, whose subject recovered meanwhile, resolve with the first report.
 */
import { systemClock } from '../../clock.js';
import { EventEmitter } from 'node:events';
import type { ContainerStatus, ContainersSummary, UnitsSummary } from '@tether/protocol';
import type { AnomalySink, AnomalySource } from '../alerts/anomaly.js';

export const WORKLOAD_REPORTS: ReadonlySet<string> = new Set(['report.containers', 'report.units']);

/** Restart events counted from one report at most: a counter jump after a long gap is not a storm of notifications. */
const MAX_RESTARTS_PER_REPORT = 100;
/** An OOM kill already recorded when the hub first sees the container counts if it is this recent. */
const RECENT_OOM_MS = 15 * 60_000;

export interface WorkloadEvents {
  containers: [hostId: string, prev: ContainersSummary | undefined, next: ContainersSummary];
  units: [hostId: string, prev: UnitsSummary | undefined, next: UnitsSummary];
}

export class WorkloadService extends EventEmitter<WorkloadEvents> {
  private readonly containers = new Map<string, ContainersSummary>();
  private readonly units = new Map<string, UnitsSummary>();

  constructor() {
    super();
    this.setMaxListeners(0);
  }

  handleReport(hostId: string, type: string, body: unknown): void {
    if (type === 'report.containers') {
      const next = body as ContainersSummary;
      const prev = this.containers.get(hostId);
      if (prev && next.ts < prev.ts) return; // out of order: the newer list stands
      this.containers.set(hostId, next);
      this.emit('containers', hostId, prev, next);
    } else if (type === 'report.units') {
      const next = body as UnitsSummary;
      const prev = this.units.get(hostId);
      if (prev && next.ts < prev.ts) return;
      this.units.set(hostId, next);
      this.emit('units', hostId, prev, next);
    }
  }

  latestContainers(hostId: string): ContainersSummary | undefined {
    return this.containers.get(hostId);
  }

  latestUnits(hostId: string): UnitsSummary | undefined {
    return this.units.get(hostId);
  }

  forget(hostId: string): void {
    this.containers.delete(hostId);
    this.units.delete(hostId);
  }
}

/** How many times a container restarted between two sightings of it. */
export function restartsBetween(prev: ContainerStatus, next: ContainerStatus): number {
  // Never started, or only listed (the agent could not inspect it): its count was not known then.
  if (prev.startedAt === undefined) return 0;
  const byCount = next.restartCount - prev.restartCount;
  if (byCount > 0) return byCount;
  // An engine that does not count (or a manual stop and start): a newer start time is one restart.
  if (byCount === 0 && next.startedAt !== undefined && prev.startedAt !== undefined && next.startedAt > prev.startedAt) return 1;
  return 0;
}

/** Turns what the agents report into the anomaly signals of the container and systemd rules. */
export class WorkloadSource implements AnomalySource {
  readonly name = 'agent reports (containers, units)';
  readonly feeds = ['container_restart', 'container_oom', 'container_unhealthy', 'unit_failed'];
  private readonly off: (() => void)[] = [];

  constructor(
    private readonly workloads: WorkloadService,
    /** the hub's clock */
    private readonly now: () => number = () => systemClock.now(),
  ) {}

  start(sink: AnomalySink): void {
    const onContainers = (hostId: string, prev: ContainersSummary | undefined, next: ContainersSummary) => this.containers(sink, hostId, prev, next);
    const onUnits = (hostId: string, _prev: UnitsSummary | undefined, next: UnitsSummary) => this.units(sink, hostId, next);
    this.workloads.on('containers', onContainers);
    this.workloads.on('units', onUnits);
    this.off.push(() => this.workloads.off('containers', onContainers), () => this.workloads.off('units', onUnits));
  }

  stop(): void {
    for (const f of this.off.splice(0)) f();
  }

  private containers(sink: AnomalySink, hostId: string, prev: ContainersSummary | undefined, next: ContainersSummary): void {
    const before = new Map((prev?.containers ?? []).map((c) => [c.id, c]));
    const now = this.now();
    for (const c of next.containers) {
      const p = before.get(c.id);
      if (p) {
        const n = Math.min(MAX_RESTARTS_PER_REPORT, restartsBetween(p, c));
        for (let i = 0; i < n; i++) sink.event(hostId, 'container_restart', c.name, now, `restart count ${c.restartCount} (${c.status}, last exit code ${c.exitCode})`);
      }
      // OOMKilled stays true until the container starts again: a kill is new when the flag turns
      // on, or when it is on with a newer finish time (killed again).
      const oomNew = c.oomKilled && (p ? !p.oomKilled || (c.finishedAt ?? 0) > (p.finishedAt ?? 0) : (c.finishedAt ?? 0) > now - RECENT_OOM_MS);
      if (oomNew) sink.event(hostId, 'container_oom', c.name, c.finishedAt && c.finishedAt <= now ? c.finishedAt : now, `killed for running out of memory (exit code ${c.exitCode})`);
    }
    const unhealthy = next.containers.filter((c) => c.health === 'unhealthy').map((c) => ({ subject: c.name, value: 1, detail: `health check failing (${c.status})` }));
    if (!next.truncated) {
      // The whole list: containers not in it (healthy again, or removed) are not unhealthy.
      sink.levels(hostId, 'container_unhealthy', unhealthy);
      return;
    }
    for (const u of unhealthy) sink.level(hostId, 'container_unhealthy', u.subject, 1, u.detail);
    for (const c of next.containers) if (c.health !== 'unhealthy' && before.get(c.id)?.health === 'unhealthy') sink.level(hostId, 'container_unhealthy', c.name, 0);
  }

  private units(sink: AnomalySink, hostId: string, next: UnitsSummary): void {
    const failed = next.failed.map((u) => ({ subject: u.unit, value: 1, detail: `${u.load} ${u.active} ${u.sub}${u.description ? `: ${u.description}` : ''}` }));
    // A truncated list says nothing about the units past its end: only a complete one resolves.
    if (next.truncated) for (const f of failed) sink.level(hostId, 'unit_failed', f.subject, 1, f.detail);
    else sink.levels(hostId, 'unit_failed', failed);
  }
}
