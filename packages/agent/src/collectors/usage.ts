// Host utilisation: CPU, load, memory, swap, filesystems with their disk I/O, network interfaces.
// Rates and percentages come from the difference between this reading and the previous one.
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Collector, CpuTimes, DiskIo, FilesystemUsage, HostUsage, InterfaceUsage } from './types.js';
import { bounded, clamp, counterRate, readMeminfo, readText, realMounts, round, type Roots } from './util.js';

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
type CpuRaw = number[]; // the eight fields above, in ticks

export function parseProcStat(text: string): { total?: CpuRaw; cores: CpuRaw[] } {
  let total: CpuRaw | undefined;
  const cores: CpuRaw[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const f = line.split(/\s+/);
    const vals = f.slice(1, 9).map(Number);
    while (vals.length < 8) vals.push(0);
    // guest time is already included in user/nice: not added again
    if (f[0] === 'cpu') total = vals;
    else cores[Number(f[0]!.slice(3))] = vals;
  }
  return total ? { total, cores } : { cores };
}

/** Percentages over an interval; undefined when any counter went backwards (CPU hot-plug, reset). */
export function cpuPercent(prev: CpuRaw | undefined, cur: CpuRaw): CpuTimes | undefined {
  if (!prev) return undefined;
  const d = cur.map((v, i) => v - (prev[i] ?? 0));
  if (d.some((x) => x < 0)) return undefined;
  const sum = d.reduce((a, b) => a + b, 0);
  if (sum <= 0) return undefined;
  const pct = (i: number) => round((100 * (d[i] ?? 0)) / sum);
  const out = Object.fromEntries(CPU_FIELDS.map((k, i) => [k, pct(i)])) as Omit<CpuTimes, 'busy'>;
  return { ...out, busy: round(100 - (100 * ((d[3] ?? 0) + (d[4] ?? 0))) / sum) };
}

export interface DiskRaw {
  name: string;
  reads: number;
  readSectors: number;
  writes: number;
  writeSectors: number;
  inProgress: number;
  ioTicksMs: number;
}

/** /proc/diskstats keyed by "major:minor". Sectors here are always 512 bytes, whatever the device's. */
export function parseDiskstats(text: string): Map<string, DiskRaw> {
  const out = new Map<string, DiskRaw>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 14) continue;
    out.set(`${f[0]}:${f[1]}`, {
      name: f[2]!,
      reads: Number(f[3]),
      readSectors: Number(f[5]),
      writes: Number(f[7]),
      writeSectors: Number(f[9]),
      inProgress: Number(f[11]),
      ioTicksMs: Number(f[12]),
    });
  }
  return out;
}

export interface NetRaw {
  rxBytes: number; rxPackets: number; rxErrors: number; rxDrops: number;
  txBytes: number; txPackets: number; txErrors: number; txDrops: number;
}

export function parseNetDev(text: string): Map<string, NetRaw> {
  const out = new Map<string, NetRaw>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 12) continue;
    out.set(line.slice(0, colon).trim(), {
      rxBytes: f[0]!, rxPackets: f[1]!, rxErrors: f[2]!, rxDrops: f[3]!,
      txBytes: f[8]!, txPackets: f[9]!, txErrors: f[10]!, txDrops: f[11]!,
    });
  }
  return out;
}

function setRate<T extends object>(target: T, key: keyof T, prev: number | undefined, cur: number, sec: number): void {
  const r = counterRate(prev, cur, sec);
  if (r !== undefined) (target as Record<keyof T, number>)[key] = round(r);
}

export interface UsageOptions {
  /** at most this many filesystems and interfaces are reported */
  maxFilesystems?: number;
  maxInterfaces?: number;
}

export function usageCollector(roots: Roots, opts: UsageOptions = {}): Collector<HostUsage> {
  // clamped to the wire schema's bound of 1024 per list
  const maxFs = clamp(opts.maxFilesystems ?? 128, 0, 1024);
  const maxIf = clamp(opts.maxInterfaces ?? 128, 0, 1024);
  let prevAt: number | undefined;
  let prevCpu: { total?: CpuRaw; cores: CpuRaw[] } | undefined;
  let prevDisks = new Map<string, DiskRaw>();
  let prevNet = new Map<string, NetRaw>();

  return {
    name: 'usage',
    defaultIntervalMs: 5_000,
    async collect(now) {
      const { procRoot } = roots;
      const sec = prevAt === undefined ? 0 : (now - prevAt) / 1000;
      const out: HostUsage = {
        ts: now,
        load: { one: 0, five: 0, fifteen: 0 },
        memory: { totalBytes: 0, usedBytes: 0, freeBytes: 0, availableBytes: 0, buffersBytes: 0, cachedBytes: 0, slabBytes: 0, usedPercent: 0 },
        swap: { totalBytes: 0, usedBytes: 0, freeBytes: 0 },
        filesystems: [],
        interfaces: [],
      };
      if (prevAt !== undefined) out.intervalMs = now - prevAt;

      // CPU
      const cpu = parseProcStat(readText(join(procRoot, 'stat'), 'latin1', 'once') ?? '');
      if (cpu.total && prevCpu?.total) {
        const total = cpuPercent(prevCpu.total, cpu.total);
        if (total) {
          const perCore: CpuTimes[] = [];
          for (let i = 0; i < cpu.cores.length; i++) {
            const c = cpu.cores[i];
            const p = c ? cpuPercent(prevCpu.cores[i], c) : undefined;
            // an offline or reset core reports zeros rather than holding a hole in the array
            perCore.push(p ?? { user: 0, nice: 0, system: 0, idle: 0, iowait: 0, irq: 0, softirq: 0, steal: 0, busy: 0 });
          }
          out.cpu = { total, perCore };
        }
      }
      prevCpu = cpu;

      // load
      const la = (readText(join(procRoot, 'loadavg'), 'latin1', 'once') ?? '').split(' ').map(Number);
      out.load = { one: la[0] || 0, five: la[1] || 0, fifteen: la[2] || 0 };

      // memory: "used" is total − available, the memory the kernel could not hand out without
      // swapping; page cache and reclaimable slab count as available.
      const mem = readMeminfo(procRoot);
      const total = mem.get('MemTotal') ?? 0;
      const free = mem.get('MemFree') ?? 0;
      const available = mem.get('MemAvailable') ?? free + (mem.get('Buffers') ?? 0) + (mem.get('Cached') ?? 0);
      out.memory = {
        totalBytes: total,
        usedBytes: Math.max(0, total - available),
        freeBytes: free,
        availableBytes: available,
        buffersBytes: mem.get('Buffers') ?? 0,
        cachedBytes: (mem.get('Cached') ?? 0) + (mem.get('SReclaimable') ?? 0),
        slabBytes: mem.get('Slab') ?? 0,
        usedPercent: total ? round((100 * (total - available)) / total) : 0,
      };
      const swapTotal = mem.get('SwapTotal') ?? 0;
      const swapFree = mem.get('SwapFree') ?? 0;
      out.swap = { totalBytes: swapTotal, usedBytes: Math.max(0, swapTotal - swapFree), freeBytes: swapFree };

      // filesystems and their block device's I/O
      const disks = parseDiskstats(readText(join(procRoot, 'diskstats'), 'latin1', 'table') ?? '');
      for (const m of realMounts(procRoot)) {
        if (out.filesystems.length >= maxFs) break;
        let st;
        try {
          st = statfsSync(m.mount);
        } catch {
          continue;
        }
        if (st.blocks === 0) continue;
        const used = (st.blocks - st.bfree) * st.bsize;
        const avail = st.bavail * st.bsize;
        const fs: FilesystemUsage = {
          mount: bounded(m.mount, 1024),
          device: bounded(m.source, 256),
          fsType: bounded(m.fsType, 64),
          sizeBytes: st.blocks * st.bsize,
          usedBytes: used,
          availableBytes: avail,
          usedPercent: used + avail > 0 ? round((100 * used) / (used + avail)) : 0,
          inodesTotal: st.files,
          inodesUsed: Math.max(0, st.files - st.ffree),
          inodesFree: st.ffree,
        };
        const d = disks.get(m.majorMinor);
        if (d) {
          const p = prevDisks.get(m.majorMinor);
          const io: DiskIo = {
            device: d.name,
            readBytesTotal: d.readSectors * 512,
            writeBytesTotal: d.writeSectors * 512,
            readsTotal: d.reads,
            writesTotal: d.writes,
            inProgress: d.inProgress,
          };
          if (p && p.name === d.name) {
            setRate(io, 'readBytesPerSec', p.readSectors * 512, io.readBytesTotal, sec);
            setRate(io, 'writeBytesPerSec', p.writeSectors * 512, io.writeBytesTotal, sec);
            setRate(io, 'readIops', p.reads, d.reads, sec);
            setRate(io, 'writeIops', p.writes, d.writes, sec);
            const busy = counterRate(p.ioTicksMs, d.ioTicksMs, sec);
            if (busy !== undefined) io.busyPercent = round(Math.min(100, busy / 10));
          }
          fs.io = io;
        }
        out.filesystems.push(fs);
      }
      prevDisks = disks;

      // network
      const net = parseNetDev(readText(join(procRoot, 'net', 'dev'), 'latin1', 'table') ?? '');
      for (const [name, n] of net) {
        if (out.interfaces.length >= maxIf) break;
        const i: InterfaceUsage = {
          name: bounded(name, 64),
          rxBytesTotal: n.rxBytes, txBytesTotal: n.txBytes,
          rxPacketsTotal: n.rxPackets, txPacketsTotal: n.txPackets,
          rxErrorsTotal: n.rxErrors, txErrorsTotal: n.txErrors,
          rxDropsTotal: n.rxDrops, txDropsTotal: n.txDrops,
        };
        const p = prevNet.get(name);
        if (p) {
          setRate(i, 'rxBytesPerSec', p.rxBytes, n.rxBytes, sec);
          setRate(i, 'txBytesPerSec', p.txBytes, n.txBytes, sec);
          setRate(i, 'rxPacketsPerSec', p.rxPackets, n.rxPackets, sec);
          setRate(i, 'txPacketsPerSec', p.txPackets, n.txPackets, sec);
          setRate(i, 'rxErrorsPerSec', p.rxErrors, n.rxErrors, sec);
          setRate(i, 'txErrorsPerSec', p.txErrors, n.txErrors, sec);
          setRate(i, 'rxDropsPerSec', p.rxDrops, n.rxDrops, sec);
          setRate(i, 'txDropsPerSec', p.txDrops, n.txDrops, sec);
        }
        out.interfaces.push(i);
      }
      prevNet = net;
      prevAt = now;
      return out;
    },
  };
}
