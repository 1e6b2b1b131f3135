// Shared readers and parsers for /proc, /sys and /etc. Reads are synchronous on purpose: these are
// small in-memory kernel files, and a synchronous read costs a few microseconds where a libuv
// threadpool round trip costs tens. A full collection blocks the event loop for about a millisecond.
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Roots {
  procRoot: string;
  sysRoot: string;
  etcRoot: string;
  utmpPath: string;
}

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times. 100 on every Linux architecture Node runs on. */
export const CLOCK_TICKS = 100;

// One buffer reused by every read: /proc files report size 0, so readFileSync would fstat, read in
// chunks and concatenate; open + read + close into a warm buffer is about three times cheaper.
const SCRATCH_SIZE = 64 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_SIZE);

/**
 * How a file ends, so that the read that would return nothing can be left out (each read is a
 * system call, and for some kernel files a costly one):
 * - `all`: read until a read returns nothing (any file).
 * - `once`: the kernel makes the file in one piece (single_open seq_files such as /proc/<pid>/stat,
 *   status, cmdline, /proc/stat, meminfo; sysfs attributes; small regular files), so a read that
 *   returns less than was asked for is the end.
 * - `table`: a read that returns under 3 KiB (having asked for at least 4 KiB) is the end. The
 *   kernel's seq_file tables (/proc/net/tcp, udp, unix) fill each read up to a page and stop short
 *   only at the end or when the next line would not fit in the page, and their lines are far shorter
 *   than 1 KiB. This saves the final empty read, which for /proc/net/tcp walks the whole connection
 *   hash table a second time (about 0.6 ms here, whatever the socket count).
 */
export type ReadMode = 'all' | 'once' | 'table';

/** Reads a whole file into a string; undefined when it cannot be opened or read. */
export function readText(path: string, encoding: BufferEncoding = 'latin1', mode: ReadMode = 'all'): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let chunks: Buffer[] | undefined; // for files bigger than the scratch buffer
    let len = 0;
    for (;;) {
      if (SCRATCH_SIZE - len < 4096) {
        (chunks ??= []).push(Buffer.from(scratch.subarray(0, len)));
        len = 0;
      }
      const want = SCRATCH_SIZE - len;
      const n = readSync(fd, scratch, len, want, null);
      if (n === 0) break;
      len += n;
      if (mode === 'once' ? n < want : mode === 'table' && n < 3072) break;
    }
    if (!chunks) return scratch.toString(encoding, 0, len);
    chunks.push(scratch.subarray(0, len));
    return Buffer.concat(chunks).toString(encoding);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** A file made in one piece (a sysfs attribute, a /proc value), trimmed. */
export function readTrim(path: string): string | undefined {
  const t = readText(path, 'latin1', 'once');
  return t === undefined ? undefined : t.trim();
}

export function readNumber(path: string): number | undefined {
  const t = readTrim(path);
  if (t === undefined || t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

export function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export function bounded(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/**
 * Per-second rate of a monotonically increasing counter. A counter that went backwards wrapped or
 * was reset (driver reload, interface re-created, 32-bit wrap): the interval's rate is unknown, so
 * undefined is returned rather than a huge or negative spike.
 */
export function counterRate(prev: number | undefined, cur: number, elapsedSec: number): number | undefined {
  if (prev === undefined || !(elapsedSec > 0) || cur < prev) return undefined;
  return (cur - prev) / elapsedSec;
}

export function clamp(n: number, min: number, max: number): number {
  return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.floor(n))) : min;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** /proc/meminfo as bytes (the kB suffix applied). */
export function readMeminfo(procRoot: string): Map<string, number> {
  const out = new Map<string, number>();
  const text = readText(join(procRoot, 'meminfo'), 'latin1', 'once') ?? '';
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const parts = line.slice(colon + 1).trim().split(/\s+/);
    const v = Number(parts[0]);
    if (!Number.isFinite(v)) continue;
    out.set(line.slice(0, colon), parts[1] === 'kB' ? v * 1024 : v);
  }
  return out;
}

// ---------- mounts ----------

export interface Mount {
  majorMinor: string;
  mount: string;
  options: string[];
  fsType: string;
  source: string;
}

// Filesystems that hold no user data (node_exporter's default exclusions), and mount points
// under which only the kernel's own filesystems live.
const PSEUDO_FS = new Set([
  'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs',
  'efivarfs', 'fusectl', 'fuse.lxcfs', 'hugetlbfs', 'mqueue', 'nsfs', 'proc', 'procfs', 'pstore',
  'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs', 'sysfs', 'tracefs', 'overlay', 'ramfs',
]);
const PSEUDO_MOUNT = /^\/(dev|proc|sys|run\/credentials\/.+|var\/lib\/docker\/.+|var\/lib\/containers\/storage\/.+|snap\/.+)($|\/)/;

/** Octal escapes in mountinfo paths (\040 for space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const byMount = new Map<string, Mount>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const majorMinor = left[2];
    const mountPoint = left[4];
    const mountOpts = left[5];
    const fsType = right[0];
    if (!majorMinor || !mountPoint || !fsType) continue;
    const superOpts = right[2] ?? '';
    const options = [...new Set([...(mountOpts ?? '').split(','), ...superOpts.split(',')])].filter(Boolean);
    // A later line for the same mount point is a mount on top of the earlier one: the later one is visible.
    const mount = unescapeMount(mountPoint);
    byMount.delete(mount);
    byMount.set(mount, { majorMinor, mount, options, fsType, source: unescapeMount(right[1] ?? '') });
  }
  return [...byMount.values()];
}

export function realMounts(procRoot: string): Mount[] {
  const text = readText(join(procRoot, 'self', 'mountinfo')) ?? '';
  return parseMountinfo(text).filter((m) => !PSEUDO_FS.has(m.fsType) && !PSEUDO_MOUNT.test(m.mount));
}

// ---------- users ----------

export class UserNames {
  private names = new Map<number, string>();
  private loadedAt = -Infinity;
  constructor(private readonly etcRoot: string, private readonly ttlMs = 300_000) {}

  name(uid: number, now: number): string {
    if (now - this.loadedAt > this.ttlMs) this.load(now);
    return this.names.get(uid) ?? String(uid);
  }

  private load(now: number): void {
    this.loadedAt = now;
    this.names.clear();
    const text = readText(join(this.etcRoot, 'passwd')) ?? '';
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const uid = Number(f[2]);
      if (f[0] && Number.isInteger(uid) && !this.names.has(uid)) this.names.set(uid, f[0]);
    }
  }
}

// ---------- utmp ----------

// struct utmp on Linux x86_64, aarch64 and other 64-bit glibc targets (32-bit ut_tv): 384 bytes.
export const UTMP_RECORD_SIZE = 384;
const USER_PROCESS = 7;

export interface UtmpEntry {
  type: number;
  pid: number;
  line: string;
  user: string;
  host: string;
  loginTime: number; // ms since epoch
}

function cstr(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

/** Logged-in user records (USER_PROCESS) from a utmp file's bytes. */
export function parseUtmp(buf: Buffer): UtmpEntry[] {
  const out: UtmpEntry[] = [];
  for (let off = 0; off + UTMP_RECORD_SIZE <= buf.length; off += UTMP_RECORD_SIZE) {
    const type = buf.readInt16LE(off);
    if (type !== USER_PROCESS) continue;
    out.push({
      type,
      pid: buf.readInt32LE(off + 4),
      line: cstr(buf, off + 8, 32),
      user: cstr(buf, off + 44, 32),
      host: cstr(buf, off + 76, 256),
      loginTime: buf.readInt32LE(off + 340) * 1000 + Math.floor(buf.readInt32LE(off + 344) / 1000),
    });
  }
  return out;
}

export function readUtmp(path: string): UtmpEntry[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return [];
  }
  return parseUtmp(buf);
}

// ---------- processes ----------

export function listPids(procRoot: string): number[] {
  const pids: number[] = [];
  for (const e of listDir(procRoot)) {
    const c = e.charCodeAt(0);
    if (c >= 48 && c <= 57) {
      const n = Number(e);
      if (Number.isInteger(n)) pids.push(n);
    }
  }
  return pids;
}

export interface PidStat {
  name: string;
  state: string;
  ppid: number;
  utime: number;
  stime: number;
  threads: number;
  startTicks: number;
  vsize: number;
  rssPages: number;
}

/**
 * /proc/<pid>/stat. The command name is in parentheses and may itself contain spaces and ')'.
 * This runs for every process, every collection, in an agent without V8's optimising compiler:
 * one native split of the fields after the name costs a fraction of a loop over its characters.
 */
export function parsePidStat(text: string): PidStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // fields counted from the state field (0) after "pid (comm) "
  const f = text.slice(close + 2).split(' ', 22); // up to rss, the 22nd
  if (f.length < 22) return undefined;
  return {
    name: text.slice(open + 1, close),
    state: f[0]!,
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    threads: Number(f[17]),
    startTicks: Number(f[19]),
    vsize: Number(f[20]),
    rssPages: Number(f[21]),
  };
}

export interface ProcEntry extends PidStat {
  pid: number;
}

/**
 * Every process's /proc/<pid>/stat, read once per collection time: the processes collector needs
 * all of them, and the sensors collector looks for sshd among them in the same tick.
 */
export class ProcessTable {
  private cache: ProcEntry[] = [];
  private readAt = NaN;
  constructor(private readonly procRoot: string) {}

  get(now: number): ProcEntry[] {
    if (now !== this.readAt) {
      const out: ProcEntry[] = [];
      for (const pid of listPids(this.procRoot)) {
        const text = readText(`${this.procRoot}/${pid}/stat`, 'latin1', 'once');
        if (text === undefined) continue; // exited between readdir and read
        const st = parsePidStat(text);
        if (st) out.push(Object.assign(st, { pid }));
      }
      this.cache = out;
      this.readAt = now;
    }
    return this.cache;
  }
}

export function bootTimeMs(procRoot: string): number {
  const stat = readText(join(procRoot, 'stat'), 'latin1', 'once') ?? '';
  const m = /^btime (\d+)/m.exec(stat);
  return m ? Number(m[1]) * 1000 : 0;
}

/**
 * socket inode → owning pid, built by reading the links in /proc/<pid>/fd: the costly part of the
 * processes and connections collectors (one readlink per open file, about 6 µs each). The map is
 * kept and rebuilt only when it is older than maxAgeMs (a socket handed to another process keeps
 * its inode), when a socket appears that it does not know, or when a process it did not scan is
 * asked about.
 */
export class SocketOwners {
  private map = new Map<number, number>();
  private builtAt = -Infinity;
  private unowned = new Set<number>();
  private scanned: Set<number> | 'all' = new Set();
  scans = 0;
  constructor(private readonly procRoot: string, private readonly maxAgeMs = 60_000) {}

  /**
   * Owners for the given socket inodes (0, a socket without one, is ignored), looking only at the
   * given processes when `pids` is passed, at all of them otherwise.
   */
  get(inodes: readonly number[], now: number, pids?: readonly number[]): Map<number, number> {
    const scanned = this.scanned;
    let stale = now - this.builtAt > this.maxAgeMs || now < this.builtAt;
    if (!stale) stale = pids === undefined ? scanned !== 'all' : scanned !== 'all' && pids.some((p) => !scanned.has(p));
    // An inode already missing after the last scan belongs to no process we look at (kernel-owned,
    // another process, another namespace, or its owner exited): it does not force a rescan.
    if (!stale) stale = inodes.some((i) => i !== 0 && !this.map.has(i) && !this.unowned.has(i));
    if (stale) {
      this.map = buildSocketOwners(this.procRoot, pids ?? listPids(this.procRoot));
      this.scanned = pids === undefined ? 'all' : new Set(pids);
      this.builtAt = now;
      this.scans++;
      this.unowned = new Set(inodes.filter((i) => i !== 0 && !this.map.has(i)));
    }
    return this.map;
  }
}

export function buildSocketOwners(procRoot: string, pids: readonly number[]): Map<number, number> {
  const map = new Map<number, number>();
  for (const pid of pids) {
    const dir = `${procRoot}/${pid}/fd`;
    for (const fd of listDir(dir)) {
      let target: string;
      try {
        target = readlinkSync(`${dir}/${fd}`);
      } catch {
        continue;
      }
      // "socket:[12345]"
      if (target.charCodeAt(0) === 115 && target.startsWith('socket:[')) {
        const inode = Number(target.slice(8, -1));
        if (!map.has(inode)) map.set(inode, pid);
      }
    }
  }
  return map;
}

// ---------- inet socket tables ----------

export const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN',
  '0B': 'CLOSING', '0C': 'NEW_SYN_RECV',
};

export interface RawSocket {
  proto: 'tcp' | 'tcp6' | 'udp' | 'udp6';
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  stateCode: string;
  uid: number;
  inode: number;
}

function hexIpv4(h: string): string {
  // The kernel prints the address as a host-order u32: little-endian on every supported target.
  const n = parseInt(h, 16);
  return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`;
}

function hexIpv6(h: string): string {
  const groups: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = h.slice(w * 8, w * 8 + 8);
    // each 32-bit word is host order: reverse its bytes
    const b = [word.slice(6, 8), word.slice(4, 6), word.slice(2, 4), word.slice(0, 2)].join('');
    groups.push(b.slice(0, 4), b.slice(4, 8));
  }
  const words = groups.map((g) => parseInt(g, 16));
  if (words.slice(0, 5).every((x) => x === 0) && words[5] === 0xffff) {
    return `::ffff:${words[6]! >>> 8}.${words[6]! & 255}.${words[7]! >>> 8}.${words[7]! & 255}`;
  }
  return compressIpv6(words);
}

export function compressIpv6(words: number[]): string {
  // longest run of zero words (length ≥ 2) becomes "::"
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function hexAddress(h: string): string {
  return h.length === 8 ? hexIpv4(h) : hexIpv6(h);
}

export interface InetTable {
  /** every socket except TCP TIME_WAIT */
  sockets: RawSocket[];
  /** TCP TIME_WAIT sockets, counted only: they have no owner, and a busy server has tens of thousands */
  timeWait: number;
}

const TIME_WAIT = '06';

/**
 * /proc/net/{tcp,tcp6,udp,udp6}. The kernel prints fixed-width columns up to the state
 * ("%4d: %08X:%04X %08X:%04X %02X ..."; 32 hex digits per IPv6 address), so the state is read at
 * its offset and a TIME_WAIT line costs no allocation.
 */
export function parseInetTable(text: string, proto: RawSocket['proto']): InetTable {
  const sockets: RawSocket[] = [];
  let timeWait = 0;
  const addrLen = proto.endsWith('6') ? 32 : 8;
  const tcp = proto.startsWith('tcp');
  let pos = text.indexOf('\n') + 1; // skip the header
  while (pos > 0 && pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', pos);
    if (colon > 0 && colon < end) {
      const la = colon + 2;
      const ra = la + addrLen + 6;
      const st = ra + addrLen + 6;
      const state = text.slice(st, st + 2);
      if (tcp && state === TIME_WAIT) timeWait++;
      else if (st + 2 <= end) {
        // after the state: tx:rx tr:when retrnsmt uid timeout inode ...
        const tail = text.slice(st + 3, end).trim().split(/\s+/);
        sockets.push({
          proto,
          localAddress: hexAddress(text.slice(la, la + addrLen)),
          localPort: parseInt(text.slice(la + addrLen + 1, la + addrLen + 5), 16),
          remoteAddress: hexAddress(text.slice(ra, ra + addrLen)),
          remotePort: parseInt(text.slice(ra + addrLen + 1, ra + addrLen + 5), 16),
          stateCode: state,
          uid: Number(tail[3]),
          inode: Number(tail[5]),
        });
      }
    }
    pos = end + 1;
  }
  return { sockets, timeWait };
}

export function readInetSockets(procRoot: string, protos: RawSocket['proto'][] = ['tcp', 'tcp6', 'udp', 'udp6']): InetTable {
  const out: InetTable = { sockets: [], timeWait: 0 };
  for (const p of protos) {
    const t = parseInetTable(readText(join(procRoot, 'net', p), 'latin1', 'table') ?? '', p);
    for (const s of t.sockets) out.sockets.push(s);
    out.timeWait += t.timeWait;
  }
  return out;
}

/**
 * The inet socket tables, read once per collection time: the processes and connections collectors
 * both need them when they run in the same tick (same `now`). Reading /proc/net/tcp costs kernel
 * time for every bucket of the host's connection hash table (sized from its memory) plus every
 * socket, TIME_WAIT included.
 */
export class InetTables {
  private cache: InetTable = { sockets: [], timeWait: 0 };
  private readAt = NaN;
  constructor(private readonly procRoot: string) {}

  get(now: number): InetTable {
    if (now !== this.readAt) {
      this.cache = readInetSockets(this.procRoot);
      this.readAt = now;
    }
    return this.cache;
  }
}

/** A TCP socket in LISTEN, or a UDP socket bound with no peer. */
export function isListening(s: RawSocket): boolean {
  return s.proto.startsWith('tcp') ? s.stateCode === '0A' : s.stateCode === '07' && s.remotePort === 0;
}

export function fileMtimeMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}
