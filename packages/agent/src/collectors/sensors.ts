// Temperatures and fans (hwmon, thermal zones), power supplies and batteries, SSH sessions.
// A host without the hardware gets empty arrays; nothing here throws for a missing file.
import { join } from 'node:path';
import type { Collector, Fan, PowerSupply, SensorsSummary, SshSession, Temperature } from './types.js';
import { ProcessTable, bounded, listDir, readNumber, readText, readTrim, readUtmp, round, type ProcEntry, type Roots } from './util.js';

const MAX = 256;

function hwmon(sysRoot: string, temps: Temperature[], fans: Fan[]): void {
  const base = join(sysRoot, 'class', 'hwmon');
  for (const h of listDir(base)) {
    const dir = join(base, h);
    const chip = bounded(readTrim(join(dir, 'name')) ?? h, 64);
    for (const f of listDir(dir)) {
      let m = /^temp(\d+)_input$/.exec(f);
      if (m && temps.length < MAX) {
        const milli = readNumber(join(dir, f));
        if (milli === undefined) continue;
        const t: Temperature = { chip, label: bounded(readTrim(join(dir, `temp${m[1]}_label`)) ?? `temp${m[1]}`, 64), celsius: milli / 1000 };
        const max = readNumber(join(dir, `temp${m[1]}_max`));
        const crit = readNumber(join(dir, `temp${m[1]}_crit`));
        if (max !== undefined) t.maxCelsius = max / 1000;
        if (crit !== undefined) t.critCelsius = crit / 1000;
        temps.push(t);
        continue;
      }
      m = /^fan(\d+)_input$/.exec(f);
      if (m && fans.length < MAX) {
        const rpm = readNumber(join(dir, f));
        if (rpm === undefined) continue;
        fans.push({ chip, label: bounded(readTrim(join(dir, `fan${m[1]}_label`)) ?? `fan${m[1]}`, 64), rpm });
      }
    }
  }
}

function thermalZones(sysRoot: string, temps: Temperature[]): void {
  const base = join(sysRoot, 'class', 'thermal');
  for (const z of listDir(base)) {
    if (!z.startsWith('thermal_zone') || temps.length >= MAX) continue;
    const milli = readNumber(join(base, z, 'temp'));
    if (milli === undefined) continue;
    const t: Temperature = { chip: bounded(readTrim(join(base, z, 'type')) ?? z, 64), label: z, celsius: milli / 1000 };
    // trip points: the "critical" one is the shutdown temperature
    for (let i = 0; i < 16; i++) {
      const type = readTrim(join(base, z, `trip_point_${i}_type`));
      if (type === undefined) break;
      if (type === 'critical') {
        const c = readNumber(join(base, z, `trip_point_${i}_temp`));
        if (c !== undefined) t.critCelsius = c / 1000;
      }
    }
    temps.push(t);
  }
}

function powerSupplies(sysRoot: string): PowerSupply[] {
  const base = join(sysRoot, 'class', 'power_supply');
  const out: PowerSupply[] = [];
  for (const name of listDir(base).slice(0, 64)) {
    const dir = join(base, name);
    const p: PowerSupply = { name: bounded(name, 64), type: bounded(readTrim(join(dir, 'type')) ?? 'Unknown', 32) };
    const online = readNumber(join(dir, 'online'));
    if (online !== undefined) p.online = online === 1;
    const status = readTrim(join(dir, 'status'));
    if (status) p.status = bounded(status, 32);
    const cap = readNumber(join(dir, 'capacity'));
    if (cap !== undefined) p.capacityPercent = cap;
    // µW, µWh; some batteries report current (µA) and voltage (µV) instead of power
    const powerUw = readNumber(join(dir, 'power_now'));
    const currentUa = readNumber(join(dir, 'current_now'));
    const voltageUv = readNumber(join(dir, 'voltage_now'));
    if (powerUw !== undefined) p.powerWatts = round(powerUw / 1e6, 3);
    else if (currentUa !== undefined && voltageUv !== undefined) p.powerWatts = round((currentUa * voltageUv) / 1e12, 3);
    const energy = readNumber(join(dir, 'energy_now'));
    const energyFull = readNumber(join(dir, 'energy_full'));
    if (energy !== undefined) p.energyWh = round(energy / 1e6, 3);
    if (energyFull !== undefined) p.energyFullWh = round(energyFull / 1e6, 3);
    out.push(p);
  }
  return out;
}

/**
 * SSH sessions: utmp entries with a remote host, and sshd session processes ("sshd: alice@pts/0",
 * "sshd: alice@notty" for sftp and commands without a tty) that utmp does not list.
 */
export function sshSessions(roots: Roots, procs: ProcEntry[] = new ProcessTable(roots.procRoot).get(0)): SshSession[] {
  const out: SshSession[] = [];
  const seen = new Set<number>();
  for (const u of readUtmp(roots.utmpPath)) {
    if (!u.host || out.length >= MAX) continue;
    out.push({ user: bounded(u.user, 32), host: bounded(u.host, 256), tty: bounded(u.line, 32), pid: u.pid, loginTime: u.loginTime, source: 'utmp' });
    seen.add(u.pid);
  }
  for (const { pid, name } of procs) {
    if (out.length >= MAX) break;
    if (name !== 'sshd' && name !== 'sshd-session') continue;
    const cmd = (readText(join(roots.procRoot, String(pid), 'cmdline'), 'utf8', 'once') ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
    // privileged monitor "sshd: alice [priv]" and the listener "sshd: /usr/sbin/sshd -D" are not sessions
    const m = /^sshd(?:-session)?: ([^\s@]+)@(\S+)$/.exec(cmd.trim());
    if (!m || seen.has(pid)) continue;
    out.push({ user: bounded(m[1]!, 32), host: '', tty: bounded(m[2]!, 32), pid, source: 'process' });
  }
  return out;
}

export function sensorsCollector(roots: Roots, procs = new ProcessTable(roots.procRoot)): Collector<SensorsSummary> {
  return {
    name: 'sensors',
    defaultIntervalMs: 30_000,
    async collect(now) {
      const temperatures: Temperature[] = [];
      const fans: Fan[] = [];
      hwmon(roots.sysRoot, temperatures, fans);
      thermalZones(roots.sysRoot, temperatures);
      return { ts: now, temperatures, fans, power: powerSupplies(roots.sysRoot), sshSessions: sshSessions(roots, procs.get(now)) };
    },
  };
}
