/**
 * Ingestion and rollups. Reports arrive from the agent link; values are flattened into series,
 * queued and written in small batches (one transaction every few milliseconds), accumulated into
 * the current minute in memory, and rolled up: minutes into hourly per-series chunks, hours into
 * the 1-hour tier. Samples that arrive late (an agent's backlog after a partition) mark their
 * minute dirty; dirty minutes are recomputed from the raw tier, so history has no hole.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AgentSelf, ConnectionsSummary, GpuSummary, HostStatic, HostUsage, ProcessSummary, SensorsSummary } from '@tether/protocol';
import { Agg, HOUR, MINUTE, floorTo } from './codec.js';
import { MetricStore, type Bucket, type RawRow } from './store.js';
import { KIND, flattenConnections, flattenGpu, flattenProcesses, flattenSelf, flattenSensors, flattenUsage, type SeriesKind } from './series.js';

export interface RetentionConfig {
  rawSec: number;
  m1Sec: number;
  h1Sec: number;
  topSec: number;
}

export const DEFAULT_RETENTION: RetentionConfig = { rawSec: 24 * 3600, m1Sec: 30 * 86400, h1Sec: 365 * 86400, topSec: 30 * 86400 };

export interface MetricsOptions {
  retention: RetentionConfig;
  /** processes kept per minute, by CPU and by memory each */
  topN: number;
  /** a minute is closed this long after it ends (reports in flight) */
  graceMs?: number;
  now?: () => number;
}

export interface LatestState {
  ts: number;
  series: Record<string, number>;
  usage?: HostUsage;
  processes?: ProcessSummary;
  connections?: ConnectionsSummary;
  sensors?: SensorsSummary;
  gpu?: GpuSummary;
  self?: AgentSelf;
  staticTs?: number;
}

export interface TopEntry {
  pid: number;
  name: string;
  user: string;
  command: string;
  cpuPercent: number;
  rssBytes: number;
  memPercent: number;
}

/** Adds one sample's values to per-series aggregates. */
function addAll(aggs: Map<string, Agg>, values: Record<string, number>): void {
  for (const k in values) {
    let g = aggs.get(k);
    if (!g) aggs.set(k, (g = new Agg()));
    g.add(values[k]!);
  }
}

interface MinuteAcc {
  minute: number;
  aggs: Map<string, Agg>;
}

export interface MetricsEvents {
  sample: [hostId: string, kind: SeriesKind, ts: number, series: Record<string, number>];
}

/** Recent ingestion latencies (receive → committed), for the hub's own metrics and benchmarks. */
export class LatencyWindow {
  private readonly buf: Float64Array;
  private n = 0;
  count = 0;
  sumMs = 0;
  constructor(size = 20_000) {
    this.buf = new Float64Array(size);
  }
  add(ms: number): void {
    this.buf[this.n++ % this.buf.length] = ms;
    this.count++;
    this.sumMs += ms;
  }
  quantile(q: number): number {
    const len = Math.min(this.n, this.buf.length);
    if (!len) return 0;
    const a = Array.from(this.buf.subarray(0, len)).sort((x, y) => x - y);
    return a[Math.min(len - 1, Math.floor(q * len))]!;
  }
  reset(): void {
    this.n = 0;
  }
}

export class MetricsService extends EventEmitter<MetricsEvents> {
  readonly latest = new Map<string, LatestState>();
  readonly ingestLatency = new LatencyWindow();
  readonly counters = { reports: 0, samples: 0, lateSamples: 0, rejectedSeries: 0, writeErrors: 0, minutesWritten: 0, hoursCompacted: 0 };
  private queue: { row: Omit<RawRow, 'layoutId'>; keys: string[]; receivedAt: number; onCommit?: () => void }[] = [];
  private minuteQueue: { hostId: string; bucket: Bucket }[] = [];
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private readonly acc = new Map<string, MinuteAcc>();
  private readonly dirty = new Map<string, Set<number>>();
  private readonly topAcc = new Map<string, { minute: number; procs: Map<string, TopEntry> }>();
  private timer: NodeJS.Timeout | undefined;
  private lastPrune = 0;
  private lastCompact = 0;
  private readonly now: () => number;
  private readonly grace: number;

  constructor(
    readonly store: MetricStore,
    private readonly log: Logger,
    readonly opts: MetricsOptions,
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.grace = opts.graceMs ?? 10_000;
  }

  start(tickMs = 5000): void {
    this.timer = setInterval(() => void this.tick().catch((err: Error) => this.log.error({ err: err.message }, 'metrics tick failed')), tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    // Write what the open minutes hold so far; a restart continues from there.
    for (const [hostId, a] of this.acc) this.writeMinute(hostId, a);
    this.acc.clear();
    while (this.queue.length || this.minuteQueue.length) await this.flush();
  }

  // --- intake ----------------------------------------------------------------------------------

  private state(hostId: string): LatestState {
    let s = this.latest.get(hostId);
    if (!s) this.latest.set(hostId, (s = { ts: 0, series: {} }));
    return s;
  }

  /**
   * Takes one report from an agent. `onCommit` runs once a usage report's samples are committed
   * (the hub then acknowledges it, and the agent forgets it).
   */
  handleReport(hostId: string, type: string, body: unknown, receivedAt = performance.now(), onCommit?: () => void): void {
    this.counters.reports++;
    const st = this.state(hostId);
    switch (type) {
      case 'report.usage': {
        const u = body as HostUsage;
        st.usage = u;
        this.ingest(hostId, 'usage', u.ts, flattenUsage(u), receivedAt);
        this.afterCommit(onCommit);
        break;
      }
      case 'report.backlog': {
        for (const u of (body as { samples: HostUsage[] }).samples) this.ingest(hostId, 'usage', u.ts, flattenUsage(u), receivedAt, true);
        this.afterCommit(onCommit);
        break;
      }
      case 'report.processes': {
        const p = body as ProcessSummary;
        st.processes = p;
        this.ingest(hostId, 'processes', p.ts, flattenProcesses(p), receivedAt);
        this.trackTop(hostId, p);
        break;
      }
      case 'report.connections': {
        const c = body as ConnectionsSummary;
        st.connections = c;
        this.ingest(hostId, 'connections', c.ts, flattenConnections(c), receivedAt);
        break;
      }
      case 'report.sensors': {
        const s = body as SensorsSummary;
        st.sensors = s;
        this.ingest(hostId, 'sensors', s.ts, flattenSensors(s), receivedAt);
        break;
      }
      case 'report.gpu': {
        const g = body as GpuSummary;
        st.gpu = g;
        this.ingest(hostId, 'gpu', g.ts, flattenGpu(g), receivedAt);
        break;
      }
      case 'report.self': {
        const s = body as AgentSelf;
        st.self = s;
        this.ingest(hostId, 'self', s.ts, flattenSelf(s), receivedAt);
        break;
      }
      case 'report.static': {
        const s = body as HostStatic;
        st.staticTs = s.ts;
        void this.store.putInventory(hostId, s.ts, s).catch((err: Error) => this.log.error({ err: err.message, hostId }, 'inventory write failed'));
        break;
      }
    }
  }

  /** Runs `cb` after the samples queued so far are committed. */
  private afterCommit(cb?: () => void): void {
    if (!cb) return;
    const last = this.queue[this.queue.length - 1];
    if (!last) return cb();
    const prev = last.onCommit;
    last.onCommit = prev ? () => (prev(), cb()) : cb;
  }

  /** Takes one sample of flattened series. Exposed for tests and the benchmark. */
  ingest(hostId: string, kind: SeriesKind, ts: number, series: Record<string, number>, receivedAt = performance.now(), backlog = false): void {
    const now = this.now();
    // A sample stamped in the future (clock skew) is stored at the hub's time instead of poisoning buckets ahead.
    if (ts > now + 60_000) ts = now;
    const keys = Object.keys(series);
    if (!keys.length) return;
    this.counters.samples++;
    const st = this.state(hostId);
    if (!backlog && ts >= st.ts) {
      Object.assign(st.series, series);
      st.ts = ts;
    }
    this.emit('sample', hostId, kind, ts, series);
    // Values are queued with their keys; the layout id is resolved at flush time (cached).
    this.queue.push({ row: { hostId, kind: KIND[kind], ts, values: keys.map((k) => series[k]!) }, keys, receivedAt });
    this.accumulate(hostId, ts, series, now);
    this.scheduleFlush();
  }

  private accumulate(hostId: string, ts: number, series: Record<string, number>, now: number): void {
    const minute = floorTo(ts, MINUTE);
    let a = this.acc.get(hostId);
    if (a && a.minute === minute) {
      // same minute: accumulate
    } else if ((!a || minute > a.minute) && minute + MINUTE + this.grace > now) {
      if (a) this.writeMinute(hostId, a);
      a = { minute, aggs: new Map() };
      this.acc.set(hostId, a);
    } else {
      // Late: the minute is closed (or older than the open one). Recompute it from raw after the flush.
      this.counters.lateSamples++;
      let d = this.dirty.get(hostId);
      if (!d) this.dirty.set(hostId, (d = new Set()));
      d.add(minute);
      return;
    }
    addAll(a.aggs, series);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A few milliseconds of batching: one transaction carries every report that arrived meanwhile.
    setTimeout(() => {
      this.flushScheduled = false;
      void this.flush();
    }, 5);
  }

  /**
   * Writes what is queued: raw rows first (their commit is what an agent's report waits for),
   * then closed minutes, both as multi-row statements. Large batches are cut into slices with a
   * turn of the event loop between them, so a minute boundary across 10,000 hosts does not stall
   * the reports arriving meanwhile.
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.queue.length && !this.minuteQueue.length) return;
    const batch = this.queue.splice(0, 2000);
    // Few minutes per flush: raw rows, which agents wait on for their ack, never queue long behind them.
    const minutes = this.minuteQueue.splice(0, 150);
    this.flushing = (async () => {
      if (batch.length) {
        try {
          const rows: RawRow[] = [];
          for (const q of batch) rows.push({ ...q.row, layoutId: await this.store.layoutFor(q.row.hostId, q.keys) });
          await this.store.insertRaw(rows);
          const t = performance.now();
          for (const b of batch) {
            this.ingestLatency.add(t - b.receivedAt);
            b.onCommit?.();
          }
        } catch (err) {
          this.counters.writeErrors++;
          this.log.error({ err: (err as Error).message, rows: batch.length }, 'raw metrics write failed');
        }
      }
      if (minutes.length) {
        try {
          await this.store.upsertMinuteRows(minutes);
          this.counters.minutesWritten += minutes.length;
        } catch (err) {
          this.counters.writeErrors++;
          this.log.error({ err: (err as Error).message, rows: minutes.length }, 'minute rollup write failed');
        }
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
    if (this.queue.length || this.minuteQueue.length) {
      await new Promise((r) => setImmediate(r));
      this.scheduleFlush();
    }
  }

  private toBucket(minute: number, aggs: Map<string, Agg>): Bucket {
    const keys = [...aggs.keys()].sort();
    const n = keys.length;
    const b: Bucket = { ts: minute, keys, avg: new Float64Array(n), min: new Float64Array(n), max: new Float64Array(n), count: new Float64Array(n) };
    keys.forEach((k, i) => {
      const g = aggs.get(k)!;
      b.avg[i] = g.avg;
      b.min[i] = g.min;
      b.max[i] = g.max;
      b.count[i] = g.count;
    });
    return b;
  }

  /** Queues a closed minute for the next flush. */
  private writeMinute(hostId: string, a: MinuteAcc): void {
    if (!a.aggs.size) return;
    this.minuteQueue.push({ hostId, bucket: this.toBucket(a.minute, a.aggs) });
    this.scheduleFlush();
  }

  // --- top processes ---------------------------------------------------------------------------

  private trackTop(hostId: string, p: ProcessSummary): void {
    const minute = floorTo(p.ts, MINUTE);
    let t = this.topAcc.get(hostId);
    if (t && minute > t.minute) {
      void this.writeTop(hostId, t);
      t = undefined;
    }
    if (t && minute < t.minute) return; // late process lists are not merged into past minutes
    if (!t) this.topAcc.set(hostId, (t = { minute, procs: new Map() }));
    for (const x of p.processes) {
      const key = `${x.pid}:${x.startTime}`;
      const prev = t.procs.get(key);
      const cpu = x.cpuPercent ?? 0;
      if (!prev) t.procs.set(key, { pid: x.pid, name: x.name, user: x.user, command: x.command.slice(0, 256), cpuPercent: cpu, rssBytes: x.rssBytes, memPercent: x.memPercent });
      else {
        // The minute's peak for each process: "what was eating the CPU at 03:10".
        prev.cpuPercent = Math.max(prev.cpuPercent, cpu);
        prev.rssBytes = Math.max(prev.rssBytes, x.rssBytes);
        prev.memPercent = Math.max(prev.memPercent, x.memPercent);
      }
    }
  }

  private async writeTop(hostId: string, t: { minute: number; procs: Map<string, TopEntry> }): Promise<void> {
    const all = [...t.procs.values()];
    const n = this.opts.topN;
    const byCpu = [...all].sort((a, b) => b.cpuPercent - a.cpuPercent).slice(0, n);
    const byMem = [...all].sort((a, b) => b.rssBytes - a.rssBytes).slice(0, n);
    try {
      await this.store.insertTop([{ hostId, ts: t.minute, data: { byCpu, byMem } }]);
    } catch (err) {
      this.log.error({ err: (err as Error).message, hostId }, 'top processes write failed');
    }
  }

  // --- periodic work ---------------------------------------------------------------------------

  async tick(): Promise<void> {
    const now = this.now();
    for (const [hostId, a] of [...this.acc]) {
      if (a.minute + MINUTE + this.grace <= now) {
        this.acc.delete(hostId);
        this.writeMinute(hostId, a);
      }
    }
    while (this.queue.length || this.minuteQueue.length) await this.flush();
    for (const [hostId, t] of [...this.topAcc]) {
      if (t.minute + MINUTE + this.grace <= now) {
        this.topAcc.delete(hostId);
        await this.writeTop(hostId, t);
      }
    }
    await this.recomputeDirty();
    if (now - this.lastCompact >= MINUTE / 2) {
      this.lastCompact = now;
      await this.compact(now);
    }
    if (now - this.lastPrune >= HOUR) {
      this.lastPrune = now;
      await this.prune(now);
    }
  }

  /** Recomputes late minutes from the raw tier (which holds every sample, late ones included). */
  async recomputeDirty(): Promise<void> {
    const work = [...this.dirty];
    this.dirty.clear();
    for (const [hostId, minutes] of work) {
      for (const minute of [...minutes].sort((a, b) => a - b)) {
        const rows = await this.store.readRaw(hostId, minute, minute + MINUTE);
        const aggs = new Map<string, Agg>();
        for (const r of rows) addAll(aggs, r.values);
        const open = this.acc.get(hostId);
        if (open && open.minute === minute) continue; // still open: it will be written whole
        if (aggs.size) await this.store.upsertMinutes(hostId, [this.toBucket(minute, aggs)]);
      }
    }
  }

  async compact(now = this.now()): Promise<number> {
    // An hour is compacted once it has ended and its last minute has closed. Each round takes the
    // oldest pending hour of each host; hosts with a longer backlog take more rounds.
    let done = 0;
    for (let round = 0; round < 48; round++) {
      const hours = await this.store.hoursToCompact(now - 2 * this.grace - MINUTE);
      if (!hours.length) break;
      for (const h of hours) {
        try {
          await this.store.compactHour(h.hostId, h.hour);
          this.counters.hoursCompacted++;
          done++;
        } catch (err) {
          this.counters.writeErrors++;
          this.log.error({ err: (err as Error).message, ...h }, 'hour compaction failed');
          return done;
        }
        // Compaction is background work: let reports through between hosts.
        await new Promise((r) => setImmediate(r));
      }
    }
    return done;
  }

  async prune(now = this.now()): Promise<Record<string, number>> {
    const r = this.opts.retention;
    const deleted = await this.store.prune({ raw: now - r.rawSec * 1000, m1: now - r.m1Sec * 1000, h1: now - r.h1Sec * 1000, top: now - r.topSec * 1000 });
    if (Object.values(deleted).some((n) => n > 0)) this.log.info({ deleted }, 'metrics retention applied');
    return deleted;
  }

  forget(hostId: string): void {
    this.latest.delete(hostId);
    this.acc.delete(hostId);
    this.topAcc.delete(hostId);
    this.dirty.delete(hostId);
  }
}
