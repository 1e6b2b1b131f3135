// GPUs: NVIDIA figures from nvidia-smi when the binary is installed (the one command this agent
// runs for metrics), otherwise what /sys/class/drm says about each card.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Collector, GpuInfo, GpuSummary } from './types.js';
import { bounded, listDir, readText, readTrim, type Roots } from './util.js';

export const NVIDIA_QUERY_FIELDS = [
  'index', 'uuid', 'name', 'driver_version', 'utilization.gpu', 'utilization.memory', 'memory.total', 'memory.used',
  'temperature.gpu', 'power.draw', 'power.limit', 'fan.speed', 'clocks.sm',
] as const;

const MIB = 1024 * 1024;

/** A value nvidia-smi prints for a field the board does not support or cannot read right now. */
function num(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  if (t === '' || t.startsWith('[') || /^n\/?a$/i.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses `nvidia-smi --query-gpu=<NVIDIA_QUERY_FIELDS> --format=csv,noheader,nounits` output. */
export function parseNvidiaSmiCsv(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(',').map((x) => x.trim());
    if (f.length !== NVIDIA_QUERY_FIELDS.length) continue;
    const g: GpuInfo = { index: num(f[0]) ?? out.length, name: bounded(f[2] ?? '', 128), vendor: 'nvidia' };
    const set = (k: keyof GpuInfo, v: number | undefined) => {
      if (v !== undefined) (g as unknown as Record<string, number>)[k] = v;
    };
    if (f[1] && !f[1].startsWith('[')) g.uuid = bounded(f[1], 128);
    if (f[3] && !f[3].startsWith('[')) g.driverVersion = bounded(f[3], 64);
    g.driver = 'nvidia';
    set('utilizationPercent', num(f[4]));
    set('memoryUtilizationPercent', num(f[5]));
    const total = num(f[6]);
    const used = num(f[7]);
    set('memoryTotalBytes', total === undefined ? undefined : total * MIB);
    set('memoryUsedBytes', used === undefined ? undefined : used * MIB);
    set('temperatureCelsius', num(f[8]));
    set('powerWatts', num(f[9]));
    set('powerLimitWatts', num(f[10]));
    set('fanPercent', num(f[11]));
    set('smClockMhz', num(f[12]));
    out.push(g);
    if (out.length >= 64) break;
  }
  return out;
}

const VENDORS: Record<string, string> = { '0x10de': 'nvidia', '0x1002': 'amd', '0x8086': 'intel', '0x1af4': 'virtio', '0x1234': 'qemu', '0x15ad': 'vmware' };

export function drmCards(sysRoot: string): GpuInfo[] {
  const base = join(sysRoot, 'class', 'drm');
  const out: GpuInfo[] = [];
  // card0, card1 ... (card0-HDMI-A-1 are connectors; renderD128 duplicates the card)
  for (const card of listDir(base).filter((c) => /^card\d+$/.test(c)).sort()) {
    const dev = join(base, card, 'device');
    const vendorId = readTrim(join(dev, 'vendor'));
    const deviceId = readTrim(join(dev, 'device'));
    const uevent = readText(join(dev, 'uevent')) ?? '';
    const driver = /^DRIVER=(.*)$/m.exec(uevent)?.[1];
    const g: GpuInfo = {
      index: Number(card.slice(4)),
      name: bounded(driver ? `${driver} ${card}` : card, 128),
      vendor: vendorId ? (VENDORS[vendorId] ?? vendorId) : 'unknown',
      card,
    };
    if (vendorId) g.pciVendorId = bounded(vendorId, 16);
    if (deviceId) g.pciDeviceId = bounded(deviceId, 16);
    if (driver) g.driver = bounded(driver, 64);
    // amdgpu exposes its own figures in sysfs
    const busy = Number(readTrim(join(dev, 'gpu_busy_percent')));
    if (readTrim(join(dev, 'gpu_busy_percent')) !== undefined && Number.isFinite(busy)) g.utilizationPercent = busy;
    const vramTotal = Number(readTrim(join(dev, 'mem_info_vram_total')));
    const vramUsed = Number(readTrim(join(dev, 'mem_info_vram_used')));
    if (vramTotal > 0) g.memoryTotalBytes = vramTotal;
    if (vramTotal > 0 && Number.isFinite(vramUsed)) g.memoryUsedBytes = vramUsed;
    out.push(g);
    if (out.length >= 64) break;
  }
  return out;
}

export function findExecutable(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface GpuOptions {
  /** path of nvidia-smi; default: looked up on PATH once. null disables it. */
  nvidiaSmi?: string | null;
  timeoutMs?: number;
}

async function runNvidiaSmi(bin: string, timeoutMs: number): Promise<string> {
  // loaded on first use: a host without NVIDIA never pays for child_process
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      [`--query-gpu=${NVIDIA_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
      { timeout: timeoutMs, maxBuffer: 64 * 1024, windowsHide: true, env: { PATH: process.env['PATH'] ?? '', LC_ALL: 'C' } },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
}

export function gpuCollector(roots: Roots, opts: GpuOptions = {}): Collector<GpuSummary> {
  const bin = opts.nvidiaSmi === null ? undefined : (opts.nvidiaSmi ?? findExecutable('nvidia-smi'));
  const timeoutMs = opts.timeoutMs ?? 5_000;
  return {
    name: 'gpu',
    defaultIntervalMs: 15_000,
    async collect(now) {
      let error: string | undefined;
      if (bin) {
        try {
          const gpus = parseNvidiaSmiCsv(await runNvidiaSmi(bin, timeoutMs));
          if (gpus.length) return { ts: now, source: 'nvidia-smi', gpus };
        } catch (e) {
          error = bounded(e instanceof Error ? e.message : String(e), 256);
        }
      }
      const cards = drmCards(roots.sysRoot);
      const out: GpuSummary = { ts: now, source: cards.length ? 'drm' : 'none', gpus: cards };
      if (error) out.error = error;
      return out;
    },
  };
}
