// Per-process figures, bounded to the top N by CPU and the top N by memory, plus totals over all.
import { join } from 'node:path';
import type { Collector, ProcessInfo, ProcessSummary } from './types.js';
import { reportedCommand, type CmdlineMode } from './redact.js';
import {
  CLOCK_TICKS, InetTables, clamp, ProcessTable, Slicer, SocketOwners, bootTimeMs, bounded, parsePidStat, readMeminfo,
  readText, round, UserNames, type ProcEntry, type Roots,
} from './util.js';

export interface ProcessesOptions {
  /** how many processes to keep by CPU, and how many by memory (merged): default 15 each */
  topN?: number;
  /** bound on the reported command line: default 512 characters */
  maxCommandLength?: number;
  /** map sockets to processes for listening ports and connection counts: default true */
  sockets?: boolean;
  /** command lines as they are, with secret-looking values replaced (default), or the program alone (see redact.ts) */
  cmdline?: CmdlineMode;
}

interface Ranked {
  st: ProcEntry;
  rss: number;
  cpu: number | undefined;
}

interface StatusFields {
  uid: number;
  rss: number;
  vms: number;
  swap: number;
}

function parseStatus(text: string): StatusFields {
  const out: StatusFields = { uid: 0, rss: 0, vms: 0, swap: 0 };
  for (const line of text.split('\n')) {
    const c0 = line.charCodeAt(0);
    if (c0 === 85 /* U */ && line.startsWith('Uid:')) out.uid = Number(line.slice(4).trim().split(/\s+/)[0]);
    else if (c0 === 86 /* V */) {
      if (line.startsWith('VmRSS:')) out.rss = kb(line);
      else if (line.startsWith('VmSize:')) out.vms = kb(line);
      else if (line.startsWith('VmSwap:')) out.swap = kb(line);
    }
  }
  return out;
}

function kb(line: string): number {
  return (Number(line.slice(line.indexOf(':') + 1).trim().split(/\s+/)[0]) || 0) * 1024;
}

/**
 * Bytes per page, for the RSS field of /proc/<pid>/stat: found by comparing this process's own
 * RSS in pages (stat) and in kB (status), read back to back and rounded to a power of two.
 */
export function detectPageSize(procRoot: string): number {
  const st = parsePidStat(readText(join(procRoot, 'self', 'stat'), 'latin1', 'once') ?? '');
  const rss = parseStatus(readText(join(procRoot, 'self', 'status'), 'latin1', 'once') ?? '').rss;
  if (!st || !st.rssPages || !rss) return 4096;
  return 2 ** Math.round(Math.log2(rss / st.rssPages));
}

export function processesCollector(roots: Roots, opts: ProcessesOptions = {}, shared?: { users: UserNames; tables: InetTables; procs: ProcessTable }): Collector<ProcessSummary> {
  // clamped to the wire schema's bounds (at most 1000 processes, commands of 4096 characters)
  const topN = clamp(opts.topN ?? 15, 1, 500);
  const maxCmd = clamp(opts.maxCommandLength ?? 512, 16, 4096);
  const withSockets = opts.sockets ?? true;
  const cmdline = opts.cmdline ?? 'redacted';
  const users = shared?.users ?? new UserNames(roots.etcRoot);
  const procs = shared?.procs ?? new ProcessTable(roots.procRoot);
  // its own map: it looks at the reported processes only, the connections collector at all
  const owners = new SocketOwners(roots.procRoot);
  const tables = shared?.tables ?? new InetTables(roots.procRoot);
  // pid → (start time, cpu ticks) at the previous collection; a different start time is a reused pid
  let prev = new Map<number, { start: number; ticks: number }>();
  let prevAt: number | undefined;
  let bootMs = 0;
  let pageSize = 0;

  return {
    name: 'processes',
    defaultIntervalMs: 15_000,
    async collect(now) {
      const { procRoot } = roots;
      if (!bootMs) bootMs = bootTimeMs(procRoot);
      if (!pageSize) pageSize = detectPageSize(procRoot);
      const elapsedSec = prevAt === undefined ? 0 : (now - prevAt) / 1000;
      const memTotal = readMeminfo(procRoot).get('MemTotal') ?? 0;
      const next = new Map<number, { start: number; ticks: number }>();
      const totals: ProcessSummary['totals'] = {
        processes: 0, threads: 0, running: 0, sleeping: 0, blocked: 0, zombie: 0, stopped: 0, other: 0, rssBytes: 0,
      };
      let cpuSum = 0;
      let anyCpu = false;

      // Pass 1, every process: /proc/<pid>/stat only (one read each), ranked without building
      // the reported objects.
      const ranked: Ranked[] = [];
      for (const st of procs.get(now)) {
        const ticks = st.utime + st.stime;
        next.set(st.pid, { start: st.startTicks, ticks });
        const rss = st.rssPages * pageSize;
        let cpu: number | undefined;
        const before = prev.get(st.pid);
        if (before && before.start === st.startTicks && elapsedSec > 0 && ticks >= before.ticks) {
          cpu = round(((ticks - before.ticks) / CLOCK_TICKS / elapsedSec) * 100);
          cpuSum += cpu;
          anyCpu = true;
        }
        totals.processes++;
        totals.threads += st.threads;
        totals.rssBytes += rss;
        switch (st.state) {
          case 'R': totals.running++; break;
          case 'S': case 'I': totals.sleeping++; break;
          case 'D': totals.blocked++; break;
          case 'Z': totals.zombie++; break;
          case 'T': case 't': totals.stopped++; break;
          default: totals.other++;
        }
        ranked.push({ st, rss, cpu });
      }
      if (anyCpu) totals.cpuPercent = round(cpuSum);
      prev = next;
      prevAt = now;

      const byCpuThenRss = (a: Ranked, b: Ranked) => (b.cpu ?? 0) - (a.cpu ?? 0) || b.rss - a.rss;
      const byCpu = [...ranked].sort(byCpuThenRss).slice(0, topN);
      const byMem = ranked.sort((a, b) => b.rss - a.rss).slice(0, topN);
      const chosen: ProcessInfo[] = [...new Set([...byCpu, ...byMem])].sort(byCpuThenRss).map(({ st, rss, cpu }) => {
        const p: ProcessInfo = {
          pid: st.pid,
          ppid: st.ppid,
          uid: 0,
          user: '',
          state: st.state,
          name: bounded(st.name, 64),
          command: '',
          startTime: Math.round(bootMs + (st.startTicks * 1000) / CLOCK_TICKS),
          rssBytes: rss,
          vmsBytes: st.vsize,
          swapBytes: 0,
          memPercent: memTotal ? round((100 * rss) / memTotal) : 0,
          threads: st.threads,
          listenPorts: [],
          connections: 0,
        };
        if (cpu !== undefined) p.cpuPercent = cpu;
        return p;
      });

      // Pass 2, only the reported processes: owner, swap, command line, sockets.
      const chosenPids = new Set(chosen.map((p) => p.pid));
      const listen = new Map<number, Set<number>>();
      const conns = new Map<number, number>();
      if (withSockets) {
        // Sockets are matched to owners through the fds of the reported processes only. The map is
        // rebuilt when those processes change, a listening socket is new, or once a minute: on a
        // busy host new connections appear every second, and their counts may lag by that minute.
        const table = await tables.get(now);
        const { inodes, kinds, count } = table;
        const map = await owners.get(table.listening.map((s) => s.inode), now, [...chosenPids]);
        const slicer = new Slicer();
        for (const s of table.listening) {
          const pid = map.get(s.inode);
          if (pid === undefined) continue;
          let set = listen.get(pid);
          if (!set) listen.set(pid, (set = new Set()));
          set.add(s.localPort);
        }
        // TCP connections (kind 1: TCP, not listening) per owner, from the compact table
        for (let i = 0; i < count; i++) {
          if ((i & 4095) === 4095) await slicer.tick();
          if (kinds[i] !== 1) continue;
          const pid = map.get(inodes[i]!);
          if (pid !== undefined) conns.set(pid, (conns.get(pid) ?? 0) + 1);
        }
      }
      for (const p of chosen) {
        const dir = `${procRoot}/${p.pid}`; // no path.join per process: it normalises, and this runs in the interpreter
        const status = readText(`${dir}/status`, 'latin1', 'once');
        if (status !== undefined) {
          const f = parseStatus(status);
          p.uid = f.uid;
          p.swapBytes = f.swap;
        }
        p.user = bounded(users.name(p.uid, now), 64);
        const cmd = readText(`${dir}/cmdline`, 'utf8', 'once');
        // kernel threads have an empty cmdline: show [name] as ps does
        // redacted whole, then bounded: a cut must not leave the start of a secret a pattern no longer sees
        p.command = bounded(cmd ? reportedCommand(cmd.replace(/\0+$/, '').replace(/\0/g, ' '), cmdline) : `[${p.name}]`, maxCmd);
        p.listenPorts = [...(listen.get(p.pid) ?? [])].sort((a, b) => a - b).slice(0, 64);
        p.connections = conns.get(p.pid) ?? 0;
      }

      const out: ProcessSummary = { ts: now, totals, processes: chosen, truncated: chosen.length < ranked.length };
      if (elapsedSec > 0) out.intervalMs = Math.round(elapsedSec * 1000);
      return out;
    },
  };
}
