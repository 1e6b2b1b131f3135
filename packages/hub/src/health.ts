/**
 * What `/api/v1/health` reports, and when it says 503. A hub whose queries all wait for ever can
 * still answer a route that touches nothing (issue 21: the deadlocked hub said 200 while every
 * login hung), so the answer is made from checks that would fail in that state:
 *  - a database round trip (`select 1`) within the stall bound;
 *  - the event loop: the longest delay of a 500 ms timer in the last minute. A blocked loop cannot
 *    answer at all while it is blocked; once it runs again, health says it stalled and for how long
 *    (for a minute after), so a monitor polling every few seconds sees it;
 *  - for information: the last committed ingest, agents online, the scheduler's tasks.
 */
import { sql } from 'kysely';
import type { DbHandle } from './db/database.js';
import type { Clock } from './clock.js';
import type { Scheduler, ScheduledTaskStatus } from './scheduler.js';

export interface HealthOptions {
  /** a database round trip or an event-loop delay longer than this makes the hub unhealthy (default 5 s) */
  stallMs?: number;
  /** how long a seen event-loop stall keeps the answer at 503 (default 60 s) */
  stallMemoryMs?: number;
}

export interface HealthReport {
  status: 'ok' | 'unavailable';
  /** why the status is not ok, in words */
  reasons: string[];
  database: { ok: boolean; roundTripMs: number | null; error?: string };
  eventLoop: { ok: boolean; maxDelayMs: number; lastStallAt: number | null; lastStallMs: number | null };
  ingest: { lastCommitAt: number | null; ageSec: number | null };
  tasks: ScheduledTaskStatus[];
}

const SAMPLE_MS = 500;

export class HealthMonitor {
  private readonly stallMs: number;
  private readonly memoryMs: number;
  private sampler: NodeJS.Timeout | undefined;
  /** per 10 s window of real time, the longest timer delay seen (the last six windows) */
  private readonly windows: { start: number; max: number }[] = [];
  private lastStall: { at: number; perf: number; ms: number } | undefined;
  private probe: Promise<{ ok: boolean; ms: number | null; error?: string }> | undefined;
  private probeResult: { at: number; r: { ok: boolean; ms: number | null; error?: string } } | undefined;

  constructor(
    private readonly db: DbHandle,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
    private readonly ingest: () => number | undefined,
    o: HealthOptions = {},
  ) {
    this.stallMs = o.stallMs ?? 5000;
    this.memoryMs = o.stallMemoryMs ?? 60_000;
  }

  start(): void {
    let expected = performance.now() + SAMPLE_MS;
    this.sampler = setInterval(() => {
      const now = performance.now();
      this.recordDelay(now, Math.max(0, now - expected));
      expected = now + SAMPLE_MS;
    }, SAMPLE_MS);
    this.sampler.unref();
  }

  stop(): void {
    clearInterval(this.sampler);
  }

  /** Exposed for the test of the stall rule: a timer that fired `delayMs` late at `perf`. */
  recordDelay(perf: number, delayMs: number): void {
    const start = Math.floor(perf / 10_000) * 10_000;
    let w = this.windows[this.windows.length - 1];
    if (!w || w.start !== start) {
      this.windows.push((w = { start, max: 0 }));
      if (this.windows.length > 6) this.windows.shift();
    }
    if (delayMs > w.max) w.max = delayMs;
    if (delayMs > this.stallMs) this.lastStall = { at: this.clock.now(), perf, ms: Math.round(delayMs) };
  }

  /** One `select 1` at a time, its answer reused for a second, so a busy monitor adds no load. */
  private dbProbe(): Promise<{ ok: boolean; ms: number | null; error?: string }> {
    const t = performance.now();
    if (this.probeResult && t - this.probeResult.at < 1000) return Promise.resolve(this.probeResult.r);
    if (this.probe) return this.probe;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ ok: boolean; ms: number | null; error: string }>((res) => {
      timer = setTimeout(() => res({ ok: false, ms: null, error: `no answer in ${this.stallMs} ms` }), this.stallMs);
    });
    const query = sql`select 1`.execute(this.db.db).then(
      () => ({ ok: true, ms: Math.round((performance.now() - t) * 10) / 10 }),
      (err: Error) => ({ ok: false, ms: null, error: err.message.slice(0, 300) }),
    );
    this.probe = Promise.race([query, timeout]).then((r) => {
      clearTimeout(timer);
      this.probe = undefined;
      this.probeResult = { at: performance.now(), r };
      return r;
    });
    return this.probe;
  }

  async report(): Promise<HealthReport> {
    const reasons: string[] = [];
    const d = await this.dbProbe();
    if (!d.ok) reasons.push(`the database did not answer a round trip: ${d.error}`);
    const maxDelay = Math.round(Math.max(0, ...this.windows.map((w) => w.max)));
    const stall = this.lastStall && performance.now() - this.lastStall.perf < this.memoryMs ? this.lastStall : undefined;
    if (stall) reasons.push(`the event loop stalled for ${(stall.ms / 1000).toFixed(1)} s ${Math.round((performance.now() - stall.perf) / 1000)} s ago`);
    const last = this.ingest();
    const now = this.clock.now();
    return {
      status: reasons.length ? 'unavailable' : 'ok',
      reasons,
      database: { ok: d.ok, roundTripMs: d.ms, ...(d.error ? { error: d.error } : {}) },
      eventLoop: { ok: !stall, maxDelayMs: maxDelay, lastStallAt: this.lastStall?.at ?? null, lastStallMs: this.lastStall?.ms ?? null },
      ingest: { lastCommitAt: last ?? null, ageSec: last === undefined ? null : Math.round((now - last) / 1000) },
      tasks: this.scheduler.status(),
    };
  }
}
