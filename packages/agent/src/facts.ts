/**
 * Host facts for the handshake, read from the kernel's files and Node's os module — no child processes.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { HostFacts } from '@tether/protocol';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function osRelease(): HostFacts['os'] {
  const kv: Record<string, string> = {};
  for (const line of read('/etc/os-release').split('\n')) {
    const m = line.match(/^([A-Z_]+)=("?)(.*)\2$/);
    if (m) kv[m[1]!] = m[3]!;
  }
  return {
    name: (kv.NAME ?? os.type()).slice(0, 256),
    id: (kv.ID ?? '').slice(0, 64),
    version: (kv.VERSION_ID ?? '').slice(0, 64),
    pretty: (kv.PRETTY_NAME ?? kv.NAME ?? os.type()).slice(0, 256),
  };
}

function physicalCores(logical: number): number {
  const pairs = new Set<string>();
  let phys = '0';
  for (const line of read('/proc/cpuinfo').split('\n')) {
    const [k, v] = line.split(':').map((s) => s.trim());
    if (k === 'physical id') phys = v ?? '0';
    if (k === 'core id') pairs.add(`${phys}/${v}`);
  }
  return pairs.size || logical;
}

function bootTime(): number | undefined {
  const m = read('/proc/stat').match(/^btime (\d+)$/m);
  return m ? Number(m[1]) * 1000 : undefined;
}

export function gatherFacts(): HostFacts {
  const cpus = os.cpus();
  const logical = cpus.length || os.availableParallelism();
  const ips: string[] = [];
  const macs = new Set<string>();
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (ips.length < 256) ips.push(a.address);
      if (a.mac && a.mac !== '00:00:00:00:00:00') macs.add(a.mac);
    }
  }
  const bt = bootTime();
  return {
    hostname: os.hostname().slice(0, 253) || 'unknown',
    os: osRelease(),
    platform: os.platform(),
    kernel: os.release().slice(0, 128),
    arch: os.arch(),
    cpu: { model: (cpus[0]?.model ?? 'unknown').trim().slice(0, 256), physicalCores: physicalCores(logical), logicalCores: logical },
    memoryBytes: os.totalmem(),
    ips,
    macs: [...macs].slice(0, 256),
    ...(bt !== undefined ? { bootTime: bt } : {}),
  };
}
