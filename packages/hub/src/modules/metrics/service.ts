/**
 * Ingestion and rollups. Reports arrive from the agent link; values are flattened into series,
 * queued and written in small batches (one transaction every few milliseconds), accumulated into
 * the current minute in memory, and rolled up: minutes into hourly per-series chunks, hours into
 * the 1-hour tier. Samples that arrive late (an agent's backlog after a partition) mark their
 * minute dirty; dirty minutes are recomputed from the raw tier, so history has no hole.
 */
import { SeriesIndex, internKeys } from './intern.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AgentSelf, ConnectionsSummary, GpuSummary, HostStatic, HostUsage, ProcessSummary, SensorsSummary } from '@tether/protocol';
import { HOUR, MINUTE, floorTo } from './codec.js';
import { systemClock, type Clock } from '../../clock.js';
import type { Scheduler } from '../../scheduler.js';
import { MetricStore, sameKeys, type Bucket, type RawRow } from './store.js';
import { KIND, MAX_SERIES_PER_REPORT, flattenConnections, flattenGpu, flattenProcesses, flattenSelf, flattenSensors, flattenUsage, type SeriesKind } from './series.js';

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
  /** the hub's clock (rollups, compaction and retention follow it) */
  clock?: Clock;
  /**
   * Whether this hub compacts and prunes the shared tables now (in a cluster, the holder of the
   * maintenance lease; a hub alone always). Every hub closes the minutes of its own agents.
   */
  maintainer?: () => boolean;
}

export interface LatestState {
  ts: number;
  /** each report kind's latest flattened series, replaced whole by the next report of that kind */
  kinds: Partial<Record<SeriesKind, LatestValues>>;
  /** the latest usage report: as received (its frame's JSON text, in a buffer of the host's own) or as an object */
  usageFrame?: FrameCopy;
  usage?: HostUsage;
  processes?: ProcessSummary;
  connections?: ConnectionsSummary;
  sensors?: SensorsSummary;
  gpu?: GpuSummary;
  self?: AgentSelf;
  staticTs?: number;
}

/**
 * One report kind's latest values: keys shared with the host's previous report of that kind, values
 * in one typed array. Every host keeps these for several seconds, long enough for the collector to
 * move them to the old generation: as objects of 150 properties (and the parsed report beside them)
 * that was about 6 KB per report, 12 MB/s at 10,000 hosts, and a full collection every 12 s that
 * held up ingest. Now it is two small objects and an off-heap array per report.
 */
export interface LatestValues {
  ts: number;
  keys: readonly string[];
  values: Float64Array;
}

/** Calls `fn` for every latest value of a host, all report kinds together. */
export function forEachLatest(st: LatestState, fn: (key: string, value: number) => void): void {
  for (const k in st.kinds) {
    const { keys, values } = st.kinds[k as SeriesKind]!;
    for (let i = 0; i < keys.length; i++) fn(keys[i]!, values[i]!);
  }
}

/**
 * A frame's text kept outside V8's heap in a buffer that belongs to one host and is written over by
 * the next frame. Every host's latest usage frame lives 5 s, long enough to be promoted to the old
 * generation: kept as strings that was 5 MB/s of old-generation growth at 10,000 hosts, and as a new
 * Buffer per frame the same growth in external memory (a full collection every 5 s). One buffer
 * per host, reused, is neither.
 */
export interface FrameCopy {
  buf: Buffer;
  len: number;
}

/** Copies `text` into `prev`'s buffer when it fits, otherwise into a new one with room to grow. */
export function keepFrame(prev: FrameCopy | undefined, text: string): FrameCopy {
  const n = Buffer.byteLength(text);
  if (prev && n <= prev.buf.length) {
    prev.len = prev.buf.write(text, 0, 'utf8');
    return prev;
  }
  const buf = Buffer.allocUnsafeSlow(Math.max(1024, Math.ceil(n * 1.25)));
  return { buf, len: buf.write(text, 0, 'utf8') };
}

/** The latest usage report of a host (parsed again from its frame when it was kept as received). */
export function latestUsage(st: LatestState): HostUsage | undefined {
  if (st.usage) return st.usage;
  if (st.usageFrame === undefined) return undefined;
  return (JSON.parse(st.usageFrame.buf.toString('utf8', 0, st.usageFrame.len)) as { body: HostUsage }).body;
}

/** A host's latest values as one object (for the API; the hot paths use forEachLatest). */
export function latestSeries(st: LatestState): Record<string, number> {
  const out: Record<string, number> = {};
  forEachLatest(st, (k, v) => (out[k] = v));
  return out;
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

/**
 * One host's open minute: for each series its sum, count, min and max, four slots in one
 * Float64Array, found through an index of series keys. The index is kept from one minute to the next
 * (a host reports the same series all day), so a minute costs one array and no object per series:
 * with 10,000 hosts of 150 series that is 1.5 million objects a minute fewer for the collector.
 * The index itself is shared by every host with the same series (`SeriesIndex`, interned).
 */
export class MinuteAcc {
  index: SeriesIndex = SeriesIndex.empty;
  data = new Float64Array(16 * 4);
  /**
   * The host's first minute since this hub started: an earlier run may have written part of it
   * (the hub stopped mid-minute), so it is recomputed from the raw tier, which has every sample,
   * instead of written over with the part this run saw.
   */
  resumed = false;
  constructor(public minute: number) {
    this.clear(0);
  }

  /** Starts another minute with the same series index. */
  reset(minute: number): void {
    this.minute = minute;
    this.resumed = false;
    this.clear(0);
  }

  /** Empties the slots from `from` on: no samples, min +∞, max −∞. */
  private clear(from: number): void {
    const d = this.data;
    for (let o = from; o < d.length; o += 4) {
      d[o] = 0;
      d[o + 1] = 0;
      d[o + 2] = Infinity;
      d[o + 3] = -Infinity;
    }
  }

  add(values: Record<string, number>): void {
    const slot = this.index.slot;
    let fresh: string[] | undefined;
    for (const k in values) {
      const v = values[k]!;
      if (!Number.isFinite(v)) continue;
      const i = slot.get(k);
      if (i === undefined) (fresh ??= []).push(k);
      else this.put(i, v);
    }
    if (!fresh) return;
    // New series: move to the shared index of the old keys plus these, whose old slots are unchanged.
    this.index = this.index.extend(fresh);
    const need = this.index.size * 4;
    if (need > this.data.length) {
      const used = this.data.length;
      let size = used;
      while (size < need) size *= 2;
      const grown = new Float64Array(size);
      grown.set(this.data);
      this.data = grown;
      this.clear(used);
    }
    const next = this.index.slot;
    for (const k of fresh) this.put(next.get(k)!, values[k]!);
  }

  private put(i: number, v: number): void {
    const d = this.data;
    const o = i * 4;
    d[o] = d[o]! + v;
    d[o + 1] = d[o + 1]! + 1;
    if (v < d[o + 2]!) d[o + 2] = v;
    if (v > d[o + 3]!) d[o + 3] = v;
  }

  /** The minute's bucket: series with at least one value, keys sorted. */
  bucket(): Bucket | undefined {
    const d = this.data;
    const { keys: all, slots: allSlots } = this.index.sorted();
    let n = 0;
    for (let j = 0; j < allSlots.length; j++) if (d[allSlots[j]! * 4 + 1]! > 0) n++;
    if (n === 0) return undefined;
    // Usually every series has values and the sorted key list is shared from minute to minute
    // and between alike hosts (the store then finds its layout by identity).
    const keys = n === all.length ? all : internKeys(all.filter((_, j) => d[allSlots[j]! * 4 + 1]! > 0));
    const b: Bucket = { ts: this.minute, keys: keys as string[], avg: new Float64Array(n), min: new Float64Array(n), max: new Float64Array(n), count: new Float64Array(n) };
    let i = 0;
    for (let j = 0; j < allSlots.length; j++) {
      const o = allSlots[j]! * 4;
      const c = d[o + 1]!;
      if (!(c > 0)) continue;
      b.avg[i] = d[o]! / c;
      b.min[i] = d[o + 2]!;
      b.max[i] = d[o + 3]!;
      b.count[i] = c;
      i++;
    }
    return b;
  }
}

/** Series an open minute's index may hold before it is started afresh (keys that come and go). */
const MAX_INDEXED_SERIES = 4 * MAX_SERIES_PER_REPORT;

export interface MetricsEvents {
  /** `keys` (shared, see intern.ts) and `values` hold the same series as `series`, in key-list order */
  sample: [hostId: string, kind: SeriesKind, ts: number, series: Record<string, number>, keys: readonly string[], values: Float64Array];
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

/** A sample waiting for its write; it becomes the raw row once its layout is known. */
interface QueuedRow extends RawRow {
  keys: string[];
  receivedAt: number;
  onCommit?: () => void;
}

/** Queued samples that make a batch worth writing at once rather than after the batching delay. */
const EAGER_FLUSH_ROWS = 64;

export class MetricsService extends EventEmitter<MetricsEvents> {
  readonly latest = new Map<string, LatestState>();
  readonly ingestLatency = new LatencyWindow();
  readonly counters = { reports: 0, samples: 0, lateSamples: 0, tooOld: 0, rejectedSeries: 0, writeErrors: 0, minutesWritten: 0, hoursCompacted: 0 };
  private queue: QueuedRow[] = [];
  private minuteQueue: { hostId: string; bucket: Bucket }[] = [];
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private eagerFlush = false;
  private readonly acc = new Map<string, MinuteAcc>();
  /** hosts that have had an open minute since this hub started (see MinuteAcc.resumed) */
  private readonly seen = new Set<string>();
  private readonly dirty = new Map<string, Set<number>>();
  private readonly topAcc = new Map<string, { minute: number; procs: Map<string, TopEntry> }>();
  private lastPrune = 0;
  private lastCompact = 0;
  private readonly clock: Clock;
  private readonly grace: number;
  /** hub-clock time of the last committed batch of samples (the health route reports it) */
  lastCommitAt: number | undefined;

  constructor(
    readonly store: MetricStore,
    private readonly log: Logger,
    readonly opts: MetricsOptions,
  ) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.grace = opts.graceMs ?? 10_000;
  }

  private now(): number {
    return this.clock.now();
  }

  /** Closes minutes, compacts ended hours and applies retention on the scheduler's clock. */
  start(scheduler: Scheduler, tickMs = 5000): void {
    scheduler.every('metrics', tickMs, () => this.tick());
  }

  /** Writes what is queued and what the open minutes hold (call after the scheduler has stopped). */
  async stop(): Promise<void> {
    await this.flush();
    // Write what the open minutes hold so far; a restart continues from there.
    for (const [hostId, a] of this.acc) this.writeMinute(hostId, a);
    this.acc.clear();
    while (this.queue.length || this.minuteQueue.length) await this.flush();
    await this.recomputeDirty();
  }

  // --- intake ----------------------------------------------------------------------------------

  private state(hostId: string): LatestState {
    let s = this.latest.get(hostId);
    if (!s) this.latest.set(hostId, (s = { ts: 0, kinds: {} }));
    return s;
  }

  /**
   * Takes one report from an agent. `onCommit` runs once a usage report's samples are committed
   * (the hub then acknowledges it, and the agent forgets it).
   */
  handleReport(hostId: string, type: string, body: unknown, receivedAt = performance.now(), onCommit?: () => void, frame?: string): void {
    this.counters.reports++;
    const st = this.state(hostId);
    switch (type) {
      case 'report.usage': {
        const u = body as HostUsage;
        // Kept as the frame's bytes when there is one: no graph of objects for the collector to
        // walk, and no new allocation per report (see FrameCopy).
        if (frame !== undefined) {
          st.usageFrame = keepFrame(st.usageFrame, frame);
          delete st.usage;
        } else st.usage = u;
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
    else if (ts < this.oldestHour(now)) {
      // Older than the hours the 1-minute tier still keeps: its hour's minutes are gone, so it could
      // only be merged into the hour's rollup without knowing what that already counts. A backlog
      // that old is dropped (counted); a live report that old has a broken clock and is stored at
      // the hub's time, as one from the future is.
      if (backlog) {
        this.counters.tooOld++;
        return;
      }
      ts = now;
    }
    const keys = Object.keys(series);
    if (!keys.length) return;
    this.counters.samples++;
    const st = this.state(hostId);
    const last = st.kinds[kind];
    const values = new Float64Array(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = series[keys[i]!]!;
    // The previous report's key list when it is the same, else the list shared by every host that
    // reports these keys (interned only on a change): alike hosts keep one list per kind between them.
    const shared = (last && sameKeys(last.keys, keys) ? last.keys : internKeys(keys)) as string[];
    if (!backlog && (!last || ts >= last.ts)) {
      st.kinds[kind] = { ts, keys: shared, values };
      if (ts > st.ts) st.ts = ts;
    }
    this.emit('sample', hostId, kind, ts, series, shared, values);
    // Values are queued with their keys; the layout id is resolved at flush time (cached).
    this.queue.push({ hostId, kind: KIND[kind], ts, layoutId: -1, values, keys: shared, receivedAt });
    this.accumulate(hostId, ts, series, now);
    this.scheduleFlush();
  }

  private accumulate(hostId: string, ts: number, series: Record<string, number>, now: number): void {
    const minute = floorTo(ts, MINUTE);
    let a = this.acc.get(hostId);
    if (a && a.minute === minute) {
      // same minute: accumulate
    } else if ((!a || minute > a.minute) && minute + MINUTE + this.grace > now) {
      if (a) {
        this.writeMinute(hostId, a);
        if (a.index.size <= MAX_INDEXED_SERIES) a.reset(minute);
        else this.acc.set(hostId, (a = new MinuteAcc(minute)));
      } else {
        this.acc.set(hostId, (a = new MinuteAcc(minute)));
        if (!this.seen.has(hostId)) {
          this.seen.add(hostId);
          a.resumed = true;
        }
      }
    } else {
      // Late: the minute is closed (or older than the open one). Recompute it from raw after the flush.
      this.counters.lateSamples++;
      this.markDirty(hostId, minute);
      return;
    }
    a.add(series);
  }

  /** The start of the oldest hour the 1-minute tier keeps (retention drops whole hours). */
  private oldestHour(now: number): number {
    return Math.floor((now - this.opts.retention.m1Sec * 1000) / HOUR) * HOUR;
  }

  private markDirty(hostId: string, minute: number): void {
    let d = this.dirty.get(hostId);
    if (!d) this.dirty.set(hostId, (d = new Set()));
    d.add(minute);
  }

  private scheduleFlush(): void {
    // Enough rows for a batch: write them once the current socket callback returns. A timer would
    // wait until the event loop is done with every socket that is ready, which under load can be
    // a thousand reports, and their acks would wait that long.
    if (this.queue.length >= EAGER_FLUSH_ROWS && !this.eagerFlush) {
      this.eagerFlush = true;
      queueMicrotask(() => {
        this.eagerFlush = false;
        void this.flush();
      });
    }
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
          const ids = await this.store.layoutsFor(batch);
          for (let i = 0; i < batch.length; i++) batch[i]!.layoutId = ids[i]!;
          await this.store.insertRaw(batch);
          this.lastCommitAt = this.now();
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

  /** Queues a closed minute for the next flush. */
  private writeMinute(hostId: string, a: MinuteAcc): void {
    if (a.resumed) {
      this.markDirty(hostId, a.minute);
      return;
    }
    const bucket = a.bucket();
    if (!bucket) return;
    this.minuteQueue.push({ hostId, bucket });
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
    if (this.opts.maintainer && !this.opts.maintainer()) return;
    if (now - this.lastCompact >= MINUTE / 2) {
      this.lastCompact = now;
      await this.compact(now);
    }
    if (now - this.lastPrune >= HOUR) {
      this.lastPrune = now;
      await this.prune(now);
    }
  }

  /**
   * Recomputes late minutes from the raw tier (which holds every sample, late ones included). A
   * host's consecutive late minutes are read with one query per hour of them: an agent's backlog
   * after a long partition is thousands of minutes.
   */
  async recomputeDirty(): Promise<void> {
    const work = [...this.dirty];
    this.dirty.clear();
    for (const [hostId, set] of work) {
      const minutes = [...set].sort((a, b) => a - b);
      for (let i = 0; i < minutes.length; ) {
        const from = minutes[i]!;
        let j = i + 1;
        while (j < minutes.length && minutes[j]! < from + HOUR) j++;
        const want = new Set(minutes.slice(i, j));
        const rows = await this.store.readRaw(hostId, from, minutes[j - 1]! + MINUTE);
        const accs = new Map<number, MinuteAcc>();
        for (const r of rows) {
          const m = floorTo(r.ts, MINUTE);
          if (!want.has(m)) continue;
          let acc = accs.get(m);
          if (!acc) accs.set(m, (acc = new MinuteAcc(m)));
          acc.add(r.values);
        }
        const open = this.acc.get(hostId);
        const buckets: Bucket[] = [];
        for (const m of want) {
          if (open && open.minute === m) continue; // still open: it will be written whole
          const bucket = accs.get(m)?.bucket();
          if (bucket) buckets.push(bucket);
        }
        if (buckets.length) await this.store.upsertMinutes(hostId, buckets);
        i = j;
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
    // Raw rows of minutes waiting to be recomputed stay until they are: an agent's backlog after a
    // long partition can be older than the raw retention, and its minutes are made from those rows.
    let rawCut = now - r.rawSec * 1000;
    for (const set of this.dirty.values()) for (const m of set) if (m < rawCut) rawCut = m;
    const deleted = await this.store.prune({ raw: rawCut, m1: now - r.m1Sec * 1000, h1: now - r.h1Sec * 1000, top: now - r.topSec * 1000 });
    if (Object.values(deleted).some((n) => n > 0)) this.log.info({ deleted }, 'metrics retention applied');
    return deleted;
  }

  forget(hostId: string): void {
    this.latest.delete(hostId);
    this.acc.delete(hostId);
    this.seen.delete(hostId);
    this.topAcc.delete(hostId);
    this.dirty.delete(hostId);
  }
}
