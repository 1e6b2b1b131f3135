/**
 * Host facts for the handshake. The parsing is the static collector's (os-release, cpuinfo, boot
 * time); this only picks the handshake's fields and adds addresses from Node's os module.
 */
import os from 'node:os';
import type { HostAccess, HostFacts } from '@tether/protocol';
import type { AgentConfig } from './config.js';
import { parseCpuinfo, parseOsRelease } from './collectors/static.js';
import { bootTimeMs, readText } from './collectors/util.js';

export function gatherFacts(procRoot = '/proc', etcRoot = '/etc'): HostFacts {
  const rel = parseOsRelease(readText(`${etcRoot}/os-release`) ?? '');
  const cpu = parseCpuinfo(readText(`${procRoot}/cpuinfo`) ?? '');
  const ips: string[] = [];
  const macs = new Set<string>();
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (ips.length < 256) ips.push(a.address);
      if (a.mac && a.mac !== '00:00:00:00:00:00') macs.add(a.mac);
    }
  }
  const bt = bootTimeMs(procRoot);
  return {
    hostname: os.hostname().slice(0, 253) || 'unknown',
    os: { name: rel.name, id: rel.id, version: rel.versionId, pretty: rel.prettyName },
    platform: os.platform(),
    kernel: os.release().slice(0, 128),
    arch: os.arch(),
    cpu: { model: cpu.model, physicalCores: cpu.physicalCores, logicalCores: cpu.logicalCpus },
    memoryBytes: os.totalmem(),
    ips,
    macs: [...macs].slice(0, 256),
    ...(bt ? { bootTime: bt } : {}),
  };
}

/** What this agent's config opens (HostFacts.access): roots and accounts only where the capability is on. */
export function accessFacts(cfg: Pick<AgentConfig, 'capabilities' | 'fileRoots' | 'terminalUsers'> & { autoUpdate?: boolean }): HostAccess {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    user = String(process.getuid?.() ?? ''); // no passwd entry for this uid
  }
  return {
    fileRoots: cfg.capabilities.includes('files') ? cfg.fileRoots.filter((p) => p.length > 0 && p.length <= 4096).slice(0, 64) : [],
    terminalUsers: cfg.capabilities.includes('terminal') ? cfg.terminalUsers.filter((u) => u.length > 0 && u.length <= 64).slice(0, 64) : [],
    user: user.slice(0, 64),
    ...(cfg.autoUpdate ? { autoUpdate: true } : {}),
  };
}
