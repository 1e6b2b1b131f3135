// Containers (only with the `docker` capability, and only while the engine's socket answers): one
// `GET /containers/json?all=1` per collection; a container is inspected (restart count, OOM kill,
// exit code, health, start and finish times) only when it is new, its state or status changed, it
// is restarting, its health is not plainly healthy (or only the last inspect knows it), or it
// started within the last minute. A container that exits at once and is restarted at once can be
// listed as "Up Less than a second" every time, so a young container is always looked at again.
// The rest reuse what was last seen.
import { engine } from '../managers/docker.js';
import type { Collector, ContainerStatus, ContainersSummary } from './types.js';
import { bounded } from './util.js';

export interface ContainersOptions {
  /** the engine's unix socket (the agent's docker_socket) */
  socket?: string;
  /** containers reported at most (default 200, at most 500) */
  maxContainers?: number;
  /** inspect calls per collection at most (default 32) */
  maxInspect?: number;
  timeoutMs?: number;
}

const str = (v: unknown, max: number): string => bounded(typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v), max);

/** An engine time ("2026-11-22T07:11:25.399670601Z") in ms; absent for the zero time or garbage. */
export function engineTime(v: unknown): number | undefined {
  if (typeof v !== 'string' || v.startsWith('0001-')) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) && t > 0 ? t : undefined;
}

/** Health from a list row's status: "Up 3 minutes (unhealthy)" → unhealthy. */
export function healthFromStatus(status: string): string | undefined {
  const m = /\((healthy|unhealthy|health: starting|starting)\)/.exec(status);
  if (!m) return undefined;
  return m[1] === 'health: starting' ? 'starting' : m[1];
}

/** The row of `GET /containers/json?all=1`, before or without inspecting. */
export function fromListRow(c: Record<string, unknown>): ContainerStatus {
  const names = Array.isArray(c.Names) ? (c.Names as unknown[]) : [];
  const status = str(c.Status, 256);
  const health = healthFromStatus(status);
  return {
    id: str(c.Id, 128),
    name: str(names[0], 256).replace(/^\//, '') || str(c.Id, 12),
    image: str(c.Image, 512),
    state: str(c.State, 32),
    status,
    ...(health ? { health } : {}),
    restartCount: 0,
    oomKilled: false,
    exitCode: 0,
  };
}

/** Adds what `GET /containers/{id}/json` says to a list row. */
export function withInspect(row: ContainerStatus, i: Record<string, any>): ContainerStatus {
  const st = (i.State ?? {}) as Record<string, unknown>;
  const h = (st.Health as { Status?: unknown } | undefined)?.Status;
  const health = typeof h === 'string' && h ? str(h, 32) : row.health;
  const startedAt = engineTime(st.StartedAt);
  const finishedAt = engineTime(st.FinishedAt);
  const { health: _h, startedAt: _s, finishedAt: _f, ...rest } = row;
  return {
    ...rest,
    ...(health ? { health } : {}),
    restartCount: Math.max(0, Math.floor(Number(i.RestartCount) || 0)),
    oomKilled: st.OOMKilled === true,
    exitCode: Math.floor(Number(st.ExitCode) || 0),
    ...(startedAt ? { startedAt } : {}),
    ...(finishedAt ? { finishedAt } : {}),
  };
}

/**
 * Whether a container must be inspected again this time (see the file's comment). `knownHealth` is
 * what the last inspect said: Docker puts the health in the list's status ("(unhealthy)"), Podman
 * does not, so a container with a health check whose status says nothing about it is inspected
 * every time.
 */
export function needsInspect(row: ContainerStatus, prev: { state: string; status: string } | undefined, knownHealth?: string): boolean {
  if (!prev) return true;
  if (prev.state !== row.state || prev.status !== row.status) return true;
  if (row.state === 'restarting') return true;
  if (row.health && row.health !== 'healthy') return true;
  if (knownHealth && !row.health) return true;
  return /^Up (Less than a second|\d+ seconds?)\b/.test(row.status);
}

export function containersCollector(opts: ContainersOptions = {}): Collector<ContainersSummary> {
  const socket = opts.socket ?? '/var/run/docker.sock';
  const maxContainers = Math.min(500, Math.max(1, opts.maxContainers ?? 200));
  const maxInspect = Math.max(0, opts.maxInspect ?? 32);
  const timeoutMs = opts.timeoutMs ?? 5000;
  /** id → the list row it was inspected at, and the result */
  let seen = new Map<string, { state: string; status: string; full: ContainerStatus }>();
  return {
    name: 'containers',
    defaultIntervalMs: 15_000,
    async collect(now) {
      let rows: Record<string, unknown>[];
      try {
        const r = await engine(socket, 'GET', '/containers/json?all=1', undefined, timeoutMs);
        if (r.status !== 200) return undefined;
        rows = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>[];
        if (!Array.isArray(rows)) return undefined;
      } catch {
        // No engine here (or not now): nothing to report, as gpu reports nothing without a GPU.
        return undefined;
      }
      const truncated = rows.length > maxContainers;
      const next = new Map<string, { state: string; status: string; full: ContainerStatus }>();
      const out: ContainerStatus[] = [];
      let inspects = 0;
      for (const raw of rows.slice(0, maxContainers)) {
        const row = fromListRow(raw);
        if (!row.id) continue;
        const prev = seen.get(row.id);
        let full = prev ? { ...prev.full, name: row.name, image: row.image, state: row.state, status: row.status, ...(row.health ? { health: row.health } : {}) } : row;
        let key = prev ? { state: prev.state, status: prev.status } : undefined;
        if (needsInspect(row, prev, prev?.full.health) && inspects < maxInspect) {
          inspects++;
          try {
            const r = await engine(socket, 'GET', `/containers/${encodeURIComponent(row.id)}/json`, undefined, timeoutMs);
            if (r.status === 200) {
              full = withInspect(row, JSON.parse(r.body.toString('utf8')) as Record<string, unknown>);
              key = { state: row.state, status: row.status };
            }
          } catch {
            /* gone between list and inspect, or the engine hiccuped: the list row stands */
          }
        }
        next.set(row.id, { ...(key ?? { state: '', status: '' }), full });
        out.push(full);
      }
      seen = next;
      return { ts: now, containers: out, truncated };
    },
  };
}
