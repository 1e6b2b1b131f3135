// Host facts that rarely change: identity, OS, hardware, filesystems, interfaces, routes, DNS, logins.
// Checked every defaultIntervalMs (cheap), reported only when something other than the clock
// changed, or once a day.
import { statfsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type {
  BlockDeviceInfo, Collector, CpuInfo, FilesystemInfo, GatewayInfo, HostStatic, InterfaceInfo, OsInfo,
} from './types.js';
import {
  bounded, bootTimeMs, compressIpv6, listDir, readMeminfo, readNumber, readText, readTrim, readUtmp, realMounts,
  type Roots,
} from './util.js';

export const STATIC_REPORT_EVERY_MS = 86_400_000;

export function parseOsRelease(text: string): OsInfo {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2] ?? '';
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    kv.set(m[1]!, v.replace(/\\(.)/g, '$1'));
  }
  return {
    platform: process.platform,
    id: bounded(kv.get('ID') ?? 'linux', 64),
    name: bounded(kv.get('NAME') ?? 'Linux', 128),
    version: bounded(kv.get('VERSION') ?? '', 128),
    versionId: bounded(kv.get('VERSION_ID') ?? '', 64),
    prettyName: bounded(kv.get('PRETTY_NAME') ?? kv.get('NAME') ?? 'Linux', 128),
  };
}

export function parseCpuinfo(text: string): CpuInfo {
  let logical = 0;
  let model = '';
  let vendor = '';
  let mhzSum = 0;
  let mhzN = 0;
  const sockets = new Set<string>();
  const cores = new Set<string>();
  let physId = '0';
  for (const block of text.split(/\n\s*\n/)) {
    if (!/^processor\s*:/m.test(block)) continue;
    logical++;
    physId = '0';
    let coreId: string | undefined;
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const key = line.slice(0, colon).trim();
      const val = line.slice(colon + 1).trim();
      if (key === 'model name' && !model) model = val;
      else if (key === 'vendor_id' && !vendor) vendor = val;
      else if (key === 'cpu MHz') { mhzSum += Number(val) || 0; mhzN++; }
      else if (key === 'physical id') physId = val;
      else if (key === 'core id') coreId = val;
    }
    sockets.add(physId);
    cores.add(coreId === undefined ? `cpu${logical}` : `${physId}:${coreId}`);
  }
  if (!model) model = os.cpus()[0]?.model ?? 'unknown'; // ARM cpuinfo has no "model name"
  return {
    model: bounded(model, 128),
    vendor: bounded(vendor, 64),
    sockets: Math.max(1, sockets.size),
    physicalCores: Math.max(1, cores.size),
    logicalCpus: Math.max(1, logical),
    mhz: mhzN ? Math.round(mhzSum / mhzN) : 0,
  };
}

const IFF_FLAGS: [number, string][] = [
  [0x1, 'UP'], [0x2, 'BROADCAST'], [0x4, 'DEBUG'], [0x8, 'LOOPBACK'], [0x10, 'POINTOPOINT'],
  [0x20, 'NOTRAILERS'], [0x40, 'RUNNING'], [0x80, 'NOARP'], [0x100, 'PROMISC'], [0x200, 'ALLMULTI'],
  [0x400, 'MASTER'], [0x800, 'SLAVE'], [0x1000, 'MULTICAST'], [0x2000, 'PORTSEL'], [0x4000, 'AUTOMEDIA'],
  [0x8000, 'DYNAMIC'],
];

function interfaces(sysRoot: string): InterfaceInfo[] {
  const addrs = os.networkInterfaces();
  const out: InterfaceInfo[] = [];
  for (const name of listDir(join(sysRoot, 'class', 'net')).slice(0, 256)) {
    const dir = join(sysRoot, 'class', 'net', name);
    const flagsN = parseInt(readTrim(join(dir, 'flags')) ?? '0', 16) || 0;
    const operState = readTrim(join(dir, 'operstate')) ?? 'unknown';
    // speed answers EINVAL while the link is down and for loopback: not asked then
    const speed = operState === 'up' && !(flagsN & 0x8) ? readNumber(join(dir, 'speed')) : undefined;
    const info: InterfaceInfo = {
      index: readNumber(join(dir, 'ifindex')) ?? 0,
      name,
      mtu: readNumber(join(dir, 'mtu')) ?? 0,
      flags: IFF_FLAGS.filter(([bit]) => flagsN & bit).map(([, n]) => n),
      mac: readTrim(join(dir, 'address')) ?? '',
      operState,
      addresses: (addrs[name] ?? []).slice(0, 64).map((a) => ({
        family: a.family,
        address: a.address,
        prefixLength: Number((a.cidr ?? '/0').split('/')[1]) || 0,
      })),
    };
    if (speed !== undefined && speed > 0) info.speedMbps = speed;
    out.push(info);
  }
  return out.sort((a, b) => a.index - b.index);
}

export function parseRoute4(text: string): GatewayInfo | undefined {
  let best: { g: GatewayInfo; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // default route: destination 0, mask 0, RTF_GATEWAY (0x2) set
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue;
    if (!(parseInt(f[3] ?? '0', 16) & 0x2)) continue;
    const n = parseInt(f[2] ?? '0', 16);
    const metric = Number(f[6]);
    const g = { address: `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`, interface: f[0]! };
    if (!best || metric < best.metric) best = { g, metric };
  }
  return best?.g;
}

export function parseRoute6(text: string): GatewayInfo | undefined {
  let best: { g: GatewayInfo; metric: number } | undefined;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    if (!/^0{32}$/.test(f[0] ?? '') || f[1] !== '00' || /^0{32}$/.test(f[4] ?? '0'.repeat(32))) continue;
    if (f[9] === 'lo') continue;
    const h = f[4]!;
    const words: number[] = [];
    for (let i = 0; i < 8; i++) words.push(parseInt(h.slice(i * 4, i * 4 + 4), 16));
    const metric = parseInt(f[5] ?? '0', 16);
    const g = { address: compressIpv6(words), interface: f[9]! };
    if (!best || metric < best.metric) best = { g, metric };
  }
  return best?.g;
}

export function parseResolvConf(text: string): { nameservers: string[]; searchDomains: string[] } {
  const nameservers: string[] = [];
  let searchDomains: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const f = line.split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) nameservers.push(bounded(f[1], 64));
    else if ((f[0] === 'search' || f[0] === 'domain') && f.length > 1) searchDomains = f.slice(1).map((d) => bounded(d, 253));
  }
  return { nameservers: nameservers.slice(0, 16), searchDomains: searchDomains.slice(0, 16) };
}

function blockDevices(sysRoot: string): BlockDeviceInfo[] {
  const out: BlockDeviceInfo[] = [];
  for (const name of listDir(join(sysRoot, 'block'))) {
    // loop, ram and zram devices are not disks an operator provisions
    if (/^(loop|ram|zram)\d+$/.test(name)) continue;
    const dir = join(sysRoot, 'block', name);
    const sectors = readNumber(join(dir, 'size')) ?? 0;
    out.push({
      name,
      sizeBytes: sectors * 512,
      rotational: readTrim(join(dir, 'queue', 'rotational')) === '1',
      removable: readTrim(join(dir, 'removable')) === '1',
      model: bounded(readTrim(join(dir, 'device', 'model')) ?? '', 128),
      partitions: listDir(dir).filter((p) => p.startsWith(name)).slice(0, 128),
    });
    if (out.length >= 128) break;
  }
  return out;
}

function filesystems(procRoot: string): FilesystemInfo[] {
  const out: FilesystemInfo[] = [];
  for (const m of realMounts(procRoot)) {
    let st;
    try {
      st = statfsSync(m.mount);
    } catch {
      continue; // unreachable network mount, permission: leave it out rather than hang or fail
    }
    if (st.blocks === 0) continue;
    out.push({
      device: bounded(m.source, 256),
      majorMinor: m.majorMinor,
      mount: bounded(m.mount, 1024),
      fsType: bounded(m.fsType, 64),
      options: m.options.slice(0, 64).map((o) => bounded(o, 256)),
      readOnly: m.options.includes('ro'),
      sizeBytes: st.blocks * st.bsize,
      inodesTotal: st.files,
    });
    if (out.length >= 256) break;
  }
  return out;
}

export function readStatic(roots: Roots, now: number): HostStatic {
  const mem = readMeminfo(roots.procRoot);
  const uptime = Number((readText(join(roots.procRoot, 'uptime'), 'latin1', 'once') ?? '0').split(' ')[0]) || os.uptime();
  const resolv = parseResolvConf(readText(join(roots.etcRoot, 'resolv.conf')) ?? '');
  const gateways: HostStatic['gateways'] = {};
  const g4 = parseRoute4(readText(join(roots.procRoot, 'net', 'route')) ?? '');
  const g6 = parseRoute6(readText(join(roots.procRoot, 'net', 'ipv6_route')) ?? '');
  if (g4) gateways.ipv4 = g4;
  if (g6) gateways.ipv6 = g6;
  return {
    ts: now,
    hostname: bounded(os.hostname(), 253),
    uptimeSec: Math.floor(uptime),
    bootTime: bootTimeMs(roots.procRoot) || Math.round(now - uptime * 1000),
    os: parseOsRelease(readText(join(roots.etcRoot, 'os-release')) ?? readText('/usr/lib/os-release') ?? ''),
    kernel: bounded(os.release(), 128),
    kernelVersion: bounded(os.version(), 256),
    arch: process.arch,
    cpu: parseCpuinfo(readText(join(roots.procRoot, 'cpuinfo')) ?? ''),
    memory: { totalBytes: mem.get('MemTotal') ?? 0, swapTotalBytes: mem.get('SwapTotal') ?? 0 },
    blockDevices: blockDevices(roots.sysRoot),
    filesystems: filesystems(roots.procRoot),
    interfaces: interfaces(roots.sysRoot),
    gateways,
    nameservers: resolv.nameservers,
    searchDomains: resolv.searchDomains,
    users: readUtmp(roots.utmpPath).slice(0, 256).map((u) => ({
      user: bounded(u.user, 32), tty: bounded(u.line, 32), host: bounded(u.host, 256), pid: u.pid, loginTime: u.loginTime,
    })),
  };
}

/** What counts as a change: everything except the clock-driven fields and the CPU's current MHz. */
function fingerprint(s: HostStatic): string {
  const { ts: _ts, uptimeSec: _u, cpu, ...rest } = s;
  return JSON.stringify({ ...rest, cpu: { ...cpu, mhz: 0 } });
}

export function staticCollector(roots: Roots, reportEveryMs = STATIC_REPORT_EVERY_MS): Collector<HostStatic> {
  let lastPrint = '';
  let lastReport = -Infinity;
  return {
    name: 'static',
    defaultIntervalMs: 60_000,
    async collect(now) {
      const s = readStatic(roots, now);
      const print = fingerprint(s);
      if (print === lastPrint && now - lastReport < reportEveryMs) return undefined;
      lastPrint = print;
      lastReport = now;
      return s;
    },
  };
}
