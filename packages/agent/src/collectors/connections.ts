// Sockets, as `ss -tuanp` and `ss -xlp` would list them: TCP/UDP over IPv4 and IPv6 from
// /proc/net/{tcp,tcp6,udp,udp6}, unix sockets from /proc/net/unix, owners from /proc/<pid>/fd.
import { join } from 'node:path';
import type { Collector, ConnectionsSummary, InetSocket, UnixSocket } from './types.js';
import { InetTables, SocketOwners, TCP_STATES, bounded, clamp, isListening, readText, type RawSocket, type Roots } from './util.js';

export interface ConnectionsOptions {
  /** at most this many listening sockets (default 512) and other connections (default 512) */
  maxListening?: number;
  maxConnections?: number;
  maxUnixListening?: number;
}

const UNIX_TYPES: Record<string, UnixSocket['type']> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };
const SO_ACCEPTCON = 0x10000;

export function parseUnixTable(text: string): { path: string; type: UnixSocket['type']; listening: boolean; inode: number }[] {
  const out = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 7) continue;
    out.push({
      path: f.slice(7).join(' '),
      type: UNIX_TYPES[f[4] ?? ''] ?? 'other',
      listening: (parseInt(f[3] ?? '0', 16) & SO_ACCEPTCON) !== 0,
      inode: Number(f[6]),
    });
  }
  return out;
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

export function connectionsCollector(roots: Roots, opts: ConnectionsOptions = {}, owners = new SocketOwners(roots.procRoot), tables = new InetTables(roots.procRoot)): Collector<ConnectionsSummary> {
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
      const tcpCounts: Record<string, number> = {};
      let udp = 0;
      const listening: InetSocket[] = [];
      const connections: InetSocket[] = [];
      let truncated = false;
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
      const { sockets: inet, timeWait } = tables.get(now);
      if (timeWait) tcpCounts['TIME_WAIT'] = timeWait;
      const unixAll = parseUnixTable(readText(join(procRoot, 'net', 'unix'), 'latin1', 'table') ?? '');
      const wanted = inet.map((s) => s.inode);
      for (const u of unixAll) if (u.listening) wanted.push(u.inode);
      const map = owners.get(wanted, now);
      for (const s of inet) {
        if (s.proto.startsWith('tcp')) {
          const st = TCP_STATES[s.stateCode] ?? s.stateCode;
          tcpCounts[st] = (tcpCounts[st] ?? 0) + 1;
        } else udp++;
        if (isListening(s)) {
          if (listening.length < maxListening) listening.push(toSocket(s));
          else truncated = true;
        } else if (connections.length < maxConnections) connections.push(toSocket(s));
        else truncated = true;
      }
      const unixListening: UnixSocket[] = [];
      for (const u of unixAll) {
        if (!u.listening) continue;
        if (unixListening.length >= maxUnix) { truncated = true; break; }
        const sock: UnixSocket = { path: bounded(u.path, 256), type: u.type, listening: true, inode: u.inode };
        const pid = map.get(u.inode);
        if (pid !== undefined) {
          sock.pid = pid;
          sock.process = procName(procRoot, pid, names);
        }
        unixListening.push(sock);
      }
      return { ts: now, counts: { tcp: tcpCounts, udp, unix: unixAll.length }, listening, connections, unixListening, truncated };
    },
  };
}
