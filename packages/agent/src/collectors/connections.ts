// Sockets, as `ss -tuanp` and `ss -xlp` would list them: TCP/UDP over IPv4 and IPv6 from
// /proc/net/{tcp,tcp6,udp,udp6}, unix sockets from /proc/net/unix, owners from /proc/<pid>/fd.
// A busy host (100,000 connections) costs time in proportion, but in slices: the tables are read a
// buffer at a time and the owner scan has a budget, so the event loop is never held for long.
import { join } from 'node:path';
import type { Collector, ConnectionsSummary, InetSocket, UnixSocket } from './types.js';
import { InetTables, KEPT_SOCKETS, Slicer, SocketOwners, TCP_STATES, bounded, clamp, readTableLines, readText, type RawSocket, type Roots } from './util.js';

export interface ConnectionsOptions {
  /** at most this many listening sockets (default 512) and other connections (default 512) */
  maxListening?: number;
  maxConnections?: number;
  maxUnixListening?: number;
}

const UNIX_TYPES: Record<string, UnixSocket['type']> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };
const SO_ACCEPTCON = 0x10000;

export interface UnixListening {
  path: string;
  type: UnixSocket['type'];
  inode: number;
}

// "Num: RefCount Protocol Flags Type St Inode [Path]"
const UNIX_LINE = /^[0-9A-Fa-f]+: [0-9A-Fa-f]+ [0-9A-Fa-f]+ ([0-9A-Fa-f]+) ([0-9A-Fa-f]+) [0-9A-Fa-f]+ +(\d+)(?: (.*))?$/gm;

/** /proc/net/unix lines (no header): every socket counted, the listening ones kept (at most `max`). */
export class UnixTable {
  count = 0;
  readonly listening: UnixListening[] = [];
  dropped = 0;
  constructor(private readonly max = KEPT_SOCKETS) {}
  addLines(text: string): void {
    UNIX_LINE.lastIndex = 0;
    for (let m = UNIX_LINE.exec(text); m; m = UNIX_LINE.exec(text)) {
      this.count++;
      if ((parseInt(m[1]!, 16) & SO_ACCEPTCON) === 0) continue;
      if (this.listening.length >= this.max) {
        this.dropped++;
        continue;
      }
      this.listening.push({ path: m[4] ?? '', type: UNIX_TYPES[m[2]!] ?? 'other', inode: Number(m[3]) });
    }
  }
}

/** One /proc/net/unix text, header line first (for tests). */
export function parseUnixTable(text: string): UnixTable {
  const t = new UnixTable();
  const nl = text.indexOf('\n');
  if (nl >= 0) t.addLines(text.slice(nl + 1));
  return t;
}

function procName(procRoot: string, pid: number, cache: Map<number, string>): string {
  let n = cache.get(pid);
  if (n === undefined) {
    const stat = readText(`${procRoot}/${pid}/comm`, 'latin1', 'once');
    n = bounded((stat ?? '').trim(), 64);
    cache.set(pid, n);
  }
  return n;
}

export function connectionsCollector(
  roots: Roots,
  opts: ConnectionsOptions = {},
  owners = new SocketOwners(roots.procRoot),
  tables = new InetTables(roots.procRoot),
  sliceMs?: number,
): Collector<ConnectionsSummary> {
  // clamped to the wire schema's bound of 4096 per list
  const maxListening = clamp(opts.maxListening ?? 512, 0, 4096);
  const maxConnections = clamp(opts.maxConnections ?? 512, 0, 4096);
  const maxUnix = clamp(opts.maxUnixListening ?? 256, 0, 4096);
  return {
    name: 'connections',
    defaultIntervalMs: 30_000,
    async collect(now) {
      const { procRoot } = roots;
      const names = new Map<number, string>();
      const inet = await tables.get(now);
      const unix = new UnixTable(maxUnix);
      await readTableLines(join(procRoot, 'net', 'unix'), (text) => unix.addLines(text), new Slicer(sliceMs));
      // Owners only for the sockets that may be listed: the listening ones and the first others.
      const wanted = [...inet.listening.map((s) => s.inode), ...inet.others.map((s) => s.inode), ...unix.listening.map((u) => u.inode)];
      const map = await owners.get(wanted, now);
      // A list cut to its bound lists the sockets whose owner is known first (on a busy host the
      // owner scan's budget leaves some unknown), otherwise in the kernel's order.
      const pick = (all: RawSocket[], max: number): RawSocket[] => {
        if (all.length <= max) return all;
        const known = all.filter((s) => map.has(s.inode));
        return known.length >= max ? known.slice(0, max) : [...known, ...all.filter((s) => !map.has(s.inode)).slice(0, max - known.length)];
      };
      const listeningRaw = pick(inet.listening, maxListening);
      const othersRaw = pick(inet.others, maxConnections);
      const toSocket = (s: RawSocket): InetSocket => {
        const tcp = s.proto.startsWith('tcp');
        const out: InetSocket = {
          proto: s.proto,
          localAddress: s.localAddress,
          localPort: s.localPort,
          remoteAddress: s.remoteAddress,
          remotePort: s.remotePort,
          state: tcp ? (TCP_STATES[s.stateCode] ?? s.stateCode) : s.remotePort === 0 ? 'UNCONN' : 'ESTABLISHED',
          uid: s.uid,
          inode: s.inode,
        };
        const pid = s.inode ? map.get(s.inode) : undefined;
        if (pid !== undefined) {
          out.pid = pid;
          out.process = procName(procRoot, pid, names);
        }
        return out;
      };
      const tcpCounts: Record<string, number> = {};
      inet.tcpStates.forEach((n, state) => {
        if (!n) return;
        const code = state.toString(16).toUpperCase().padStart(2, '0');
        tcpCounts[TCP_STATES[code] ?? code] = n;
      });
      if (inet.timeWait) tcpCounts['TIME_WAIT'] = inet.timeWait;
      const unixListening: UnixSocket[] = unix.listening.map((u) => {
        const sock: UnixSocket = { path: bounded(u.path, 256), type: u.type, listening: true, inode: u.inode };
        const pid = map.get(u.inode);
        if (pid !== undefined) {
          sock.pid = pid;
          sock.process = procName(procRoot, pid, names);
        }
        return sock;
      });
      const truncated =
        inet.listening.length > maxListening || inet.others.length > maxConnections || inet.dropped > 0 || unix.dropped > 0 || owners.truncated;
      return {
        ts: now,
        counts: { tcp: tcpCounts, udp: inet.udp, unix: unix.count },
        listening: listeningRaw.map(toSocket),
        connections: othersRaw.map(toSocket),
        unixListening,
        truncated,
      };
    },
  };
}
