// The agent's own footprint, so the hub can show what monitoring costs each host.
import { PerformanceObserver } from 'node:perf_hooks';
import type { AgentSelf, Collector, SelfStatsHook } from './types.js';
import { bounded, round } from './util.js';

const MAX_COUNTERS = 32;

/** How often the lag sampler wakes the agent, by default. */
export const LAG_PERIOD_MS = 1000;
const RING = 128;

/**
 * Event-loop lag, from how late a repeating timer fires: a loop blocked for B ms delays the next
 * due fire by up to B. A block longer than the period is always seen, with at least B − period of
 * its length; a shorter one is seen when a fire falls due inside it (B / period of the time).
 *
 * Why not perf_hooks' monitorEventLoopDelay: its timer fires every `resolution` ms, and on a small
 * virtual machine each wake-up costs the process about 0.1–0.2 ms of CPU. At the 20 ms it ran at,
 * that was 3.8 ms/s, more than every collector together; at one wake-up a second this costs about
 * 0.25 ms/s (bench/results/agent-collect.md), and holds 128 numbers instead of a 360 KB histogram.
 */
export class LagSampler {
  private readonly ring = new Float64Array(RING);
  private n = 0; // samples since the last take(), the ring holding the latest RING of them
  private sum = 0;
  private max = 0;
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly periodMs = LAG_PERIOD_MS) {
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref(); // the sampler never keeps the agent alive
  }

  private sample(): void {
    const now = performance.now();
    const lag = Math.max(0, now - this.last - this.periodMs);
    this.last = now;
    this.ring[this.n % RING] = lag;
    this.n++;
    this.sum += lag;
    if (lag > this.max) this.max = lag;
  }

  /** mean, p99 and max since the last call (p99 over the latest 128 samples), then starts over. */
  take(): { mean: number; p99: number; max: number } {
    if (!this.n) return { mean: 0, p99: 0, max: 0 };
    const kept = Array.from(this.ring.subarray(0, Math.min(this.n, RING))).sort((a, b) => a - b);
    const p99 = kept[Math.min(kept.length - 1, Math.ceil(kept.length * 0.99) - 1)]!;
    const out = { mean: round(this.sum / this.n), p99: round(p99), max: round(this.max) };
    this.n = 0;
    this.sum = 0;
    this.max = 0;
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Garbage-collection pauses between two take()s; observed only while the self collector runs. */
class GcPauses {
  private count = 0;
  private total = 0;
  private max = 0;
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.count++;
      this.total += e.duration;
      if (e.duration > this.max) this.max = e.duration;
    }
  });
  constructor() {
    this.obs.observe({ entryTypes: ['gc'] });
  }
  take(): { count: number; totalMs: number; maxMs: number } {
    const out = { count: this.count, totalMs: round(this.total), maxMs: round(this.max) };
    this.count = 0;
    this.total = 0;
    this.max = 0;
    return out;
  }
}

const RUNTIME = `node ${process.versions.node} ${process.arch}`;

export interface SelfOptions {
  /** the lag sampler's period (default 1 s) */
  lagPeriodMs?: number;
}

export function selfCollector(selfStats?: SelfStatsHook, opts: SelfOptions = {}): Collector<AgentSelf> {
  let prevCpu: NodeJS.CpuUsage | undefined;
  let prevAt: number | undefined;
  let lag: LagSampler | undefined;
  let gc: GcPauses | undefined;
  return {
    name: 'self',
    defaultIntervalMs: 60_000,
    async collect(now) {
      // started on first use: an agent with this collector disabled pays nothing
      lag ??= new LagSampler(opts.lagPeriodMs);
      gc ??= new GcPauses();
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      const out: AgentSelf = {
        ts: now,
        pid: process.pid,
        uptimeSec: Math.floor(process.uptime()),
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        eventLoopLagMs: lag.take(),
        gc: gc.take(),
        runtime: RUNTIME,
        counters: {},
      };
      if (prevCpu && prevAt !== undefined && now > prevAt) {
        const us = cpu.user - prevCpu.user + (cpu.system - prevCpu.system);
        out.cpuPercent = round(Math.max(0, us / 1000 / (now - prevAt)) * 100);
      }
      prevCpu = cpu;
      prevAt = now;
      if (selfStats) {
        let stats: Record<string, number> = {};
        try {
          stats = selfStats();
        } catch {
          // a faulty hook must not cost the rest of the report
        }
        for (const [k, v] of Object.entries(stats).slice(0, MAX_COUNTERS)) {
          if (typeof v === 'number' && Number.isFinite(v)) out.counters[bounded(k, 64)] = v;
        }
      }
      return out;
    },
  };
}
