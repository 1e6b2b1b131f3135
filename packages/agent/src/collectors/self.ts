// The agent's own footprint, so the hub can show what monitoring costs each host.
import type { IntervalHistogram } from 'node:perf_hooks';
import type { AgentSelf, Collector, SelfStatsHook } from './types.js';
import { bounded, round } from './util.js';

const MAX_COUNTERS = 32;

export function selfCollector(selfStats?: SelfStatsHook): Collector<AgentSelf> {
  let prevCpu: NodeJS.CpuUsage | undefined;
  let prevAt: number | undefined;
  let histogram: IntervalHistogram | undefined;
  return {
    name: 'self',
    defaultIntervalMs: 60_000,
    async collect(now) {
      if (!histogram) {
        // loaded and started lazily: an agent with this collector disabled pays nothing
        const { monitorEventLoopDelay } = await import('node:perf_hooks');
        histogram = monitorEventLoopDelay({ resolution: 20 });
        histogram.enable();
      }
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      const out: AgentSelf = {
        ts: now,
        pid: process.pid,
        uptimeSec: Math.floor(process.uptime()),
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        // the histogram is in ns and includes the resolution interval itself in its samples
        eventLoopLagMs: histogram.count
          ? {
              mean: round(Math.max(0, histogram.mean / 1e6 - 20)),
              p99: round(Math.max(0, histogram.percentile(99) / 1e6 - 20)),
              max: round(Math.max(0, histogram.max / 1e6 - 20)),
            }
          : { mean: 0, p99: 0, max: 0 },
        counters: {},
      };
      histogram.reset();
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
