// Shared readers and parsers for /proc, /sys and /etc. Reads are synchronous on purpose: these are
// small in-memory kernel files, and a synchronous read costs a few microseconds where a libuv
// threadpool round trip costs tens. A full collection blocks the event loop for about a millisecond.
import { closeSync, openSync, opendirSync, readFileSync, readSync, readdirSync, readlinkSync, statSync, type Dir } from 'node:fs';
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

/** `table` mode: a read shorter than this (having asked for at least 4 KiB) was the table's last. */
const TABLE_LAST_READ = 3072;

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
      if (mode === 'once' ? n < want : mode === 'table' && n < TABLE_LAST_READ) break;
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

// ---------- work in slices ----------

/**
 * Lets a long collection give the event loop back: `tick()` returns nothing until `sliceMs` of
 * wall time have passed since the last turn, then a promise that resolves after one setImmediate
 * (I/O callbacks, timers, the hub's messages run in between). A busy host's socket tables and fd links take hundreds of
 * milliseconds to read; in slices they no longer hold back the agent's heartbeats and terminals.
 */
export class Slicer {
  private last = performance.now();
  yields = 0;
  constructor(private readonly sliceMs = 2) {}
  tick(): Promise<void> | undefined {
    if (performance.now() - this.last < this.sliceMs) return undefined;
    this.yields++;
    return new Promise<void>((r) =>
      setImmediate(() => {
        this.last = performance.now();
        r();
      }),
    );
  }
}

/**
 * Reads a kernel table (/proc/net/tcp, udp, unix…) a buffer at a time and hands over whole lines,
 * the header left out, so that a table of 100,000 sockets (15 MB) is never held as one string.
 * Ends as readText's `table` mode does. Returns false when the file cannot be opened.
 */
export async function readTableLines(path: string, onLines: (text: string) => void, slicer?: Slicer): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  const buf = Buffer.allocUnsafe(SCRATCH_SIZE); // its own: another reader may run while this one yields
  let len = 0;
  let header = true;
  try {
    for (;;) {
      const want = SCRATCH_SIZE - len;
      const n = readSync(fd, buf, len, want, null);
      len += n;
      const last = n < TABLE_LAST_READ;
      let end = last ? len : buf.lastIndexOf(10, len - 1) + 1;
      if (end === 0 && len === SCRATCH_SIZE) end = len; // a line longer than the buffer: cut, not looped on
      let start = 0;
      if (header && end > 0) {
        const nl = buf.indexOf(10);
        start = nl < 0 || nl >= end ? end : nl + 1;
        header = false;
      }
      if (end > start) onLines(buf.toString('latin1', start, end));
      if (last) break;
      buf.copy(buf, 0, end, len);
      len -= end;
      await slicer?.tick();
    }
    return true;
  } catch {
    return true;
  } finally {
    closeSync(fd);
  }
}

// ---------- socket owners ----------

/** readlinks in one owner scan at most (about 12 µs each): beyond, the scan stops and says so. */
export const OWNER_SCAN_MAX_READLINKS = 25_000;
/** every process's first this many fds are read before the rest of any process's */
const BIG_FD_TABLE = 1024;

export interface OwnerScan {
  /** socket inode → pid */
  map: Map<number, number>;
  /** the readlink budget ran out: some sockets have owners the map does not know */
  truncated: boolean;
  readlinks: number;
}

export interface OwnerScanOptions {
  maxReadlinks?: number;
  slicer?: Slicer;
}

/**
 * socket inode → owning pid, by reading the links in /proc/<pid>/fd: one readlink per open file,
 * the costly part of the processes and connections collectors. Bounded: at most `maxReadlinks`;
 * every process's first 1,024 fds before the rest of the big fd tables, each in fd order, so the
 * daemons and the low-numbered listening sockets of a proxy holding 100,000 connections come first.
 */
export async function scanSocketOwners(procRoot: string, pids: readonly number[], o: OwnerScanOptions = {}): Promise<OwnerScan> {
  const budget = o.maxReadlinks ?? OWNER_SCAN_MAX_READLINKS;
  const map = new Map<number, number>();
  let readlinks = 0;
  let cut = false;
  /**
   * Reads the links of one process's fds in fd order, from the `skip`-th entry, up to `upTo`
   * entries in all. The directory is read a batch at a time, never listed whole (a proxy's holds
   * 100,000 names). Returns how many entries it went through, or -1 when the budget ran out.
   */
  const scan = async (pid: number, skip: number, upTo: number): Promise<number> => {
    const path = `${procRoot}/${pid}/fd`;
    let dir: Dir;
    try {
      dir = opendirSync(path, { bufferSize: 256 });
    } catch {
      return 0; // exited, or not ours to read
    }
    let seen = 0;
    try {
      for (let e = dir.readSync(); e !== null && seen < upTo; e = dir.readSync()) {
        if (seen++ < skip) continue;
        if (readlinks >= budget) {
          cut = true;
          return -1;
        }
        readlinks++;
        if ((readlinks & 63) === 0) await o.slicer?.tick();
        let target: string;
        try {
          target = readlinkSync(`${path}/${e.name}`);
        } catch {
          continue;
        }
        // "socket:[12345]"
        if (target.charCodeAt(0) === 115 && target.startsWith('socket:[')) {
          const inode = Number(target.slice(8, -1));
          if (!map.has(inode)) map.set(inode, pid);
        }
      }
    } catch {
      /* the process exited while its fds were read */
    } finally {
      dir.closeSync();
    }
    return seen;
  };
  // Every process's first BIG_FD_TABLE fds, then the rest of the bigger ones.
  const big: number[] = [];
  for (const pid of pids) {
    await o.slicer?.tick();
    const n = await scan(pid, 0, BIG_FD_TABLE + 1);
    if (n < 0) break;
    if (n > BIG_FD_TABLE) big.push(pid);
  }
  for (const pid of big) {
    if (cut) break;
    await o.slicer?.tick();
    await scan(pid, BIG_FD_TABLE + 1, Infinity); // the first pass read BIG_FD_TABLE + 1 entries
  }
  return { map, truncated: cut, readlinks };
}

/**
 * The owner map kept between collections and rebuilt only when it is older than maxAgeMs (a socket
 * handed to another process keeps its inode), when a socket is asked about that it does not know,
 * or when a process it did not scan is asked about. One scan at a time: callers in the same tick
 * share it.
 */
export class SocketOwners {
  private map = new Map<number, number>();
  private builtAt = -Infinity;
  private unowned = new Set<number>();
  private scanned: Set<number> | 'all' = new Set();
  private running: Promise<void> | undefined;
  /** the last scan ran out of its readlink budget */
  truncated = false;
  scans = 0;
  constructor(
    private readonly procRoot: string,
    private readonly maxAgeMs = 60_000,
    private readonly o: { maxReadlinks?: number; sliceMs?: number } = {},
  ) {}

  /**
   * Owners for the given socket inodes (0, a socket without one, is ignored), looking only at the
   * given processes when `pids` is passed, at all of them otherwise.
   */
  async get(inodes: ArrayLike<number>, now: number, pids?: readonly number[]): Promise<Map<number, number>> {
    while (this.running) await this.running;
    const slicer = new Slicer(this.o.sliceMs);
    const scanned = this.scanned;
    let stale = now - this.builtAt > this.maxAgeMs || now < this.builtAt;
    if (!stale) stale = pids === undefined ? scanned !== 'all' : scanned !== 'all' && pids.some((p) => !scanned.has(p));
    // An inode already missing after the last scan belongs to no process we look at (kernel-owned,
    // another process, another namespace, or its owner exited): it does not force a rescan.
    for (let k = 0; !stale && k < inodes.length; k++) {
      const i = inodes[k]!;
      stale = i !== 0 && !this.map.has(i) && !this.unowned.has(i);
      if ((k & 4095) === 4095) await slicer.tick();
    }
    if (stale) {
      const run = (async () => {
        const r = await scanSocketOwners(this.procRoot, pids ?? listPids(this.procRoot), {
          ...(this.o.maxReadlinks !== undefined ? { maxReadlinks: this.o.maxReadlinks } : {}),
          slicer,
        });
        this.map = r.map;
        this.truncated = r.truncated;
        this.scanned = pids === undefined ? 'all' : new Set(pids);
        this.builtAt = now;
        this.scans++;
        const unowned = new Set<number>();
        for (let k = 0; k < inodes.length; k++) {
          if (inodes[k] !== 0 && !r.map.has(inodes[k]!)) unowned.add(inodes[k]!);
          if ((k & 4095) === 4095) await slicer.tick();
        }
        this.unowned = unowned;
      })();
      this.running = run;
      try {
        await run;
      } finally {
        this.running = undefined;
      }
    }
    return this.map;
  }
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

/** Sockets kept whole besides the listening ones: the most a report lists (the wire's bound). */
export const KEPT_SOCKETS = 4096;

/**
 * What the socket tables hold, in a size that does not grow with the host's connections beyond
 * 9 bytes a socket: counts by state, the listening sockets and the first KEPT_SOCKETS others decoded
 * whole, and for every socket only its inode and kind (for counting connections per process).
 */
export class InetTable {
  /** TCP sockets by state (the kernel's number, 1…12; TIME_WAIT is counted in timeWait) */
  readonly tcpStates = new Uint32Array(16);
  udp = 0;
  /** TCP TIME_WAIT sockets: counted only (no owner, and a busy server has tens of thousands) */
  timeWait = 0;
  /** TCP LISTEN and UDP bound without a peer, whole: at most KEPT_SOCKETS */
  readonly listening: RawSocket[] = [];
  /** the first KEPT_SOCKETS other sockets (TIME_WAIT left out), whole */
  readonly others: RawSocket[] = [];
  /** sockets seen but not kept whole (listening or not) */
  dropped = 0;
  /** every socket but TIME_WAIT: inode, and kind (bit 0 TCP, bit 1 listening) */
  count = 0;
  inodes = new Float64Array(1024);
  kinds = new Uint8Array(1024);

  /** Adds the lines of one table (`proto`), header already left out. */
  addLines(text: string, proto: RawSocket['proto']): void {
    const addrLen = proto.endsWith('6') ? 32 : 8;
    const tcp = proto.startsWith('tcp');
    let pos = 0;
    while (pos < text.length) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      const colon = text.indexOf(':', pos);
      // "%4d: %08X:%04X %08X:%04X %02X " then tx:rx tr:when retrnsmt uid timeout inode
      const la = colon + 2;
      const ra = la + addrLen + 6;
      const st = ra + addrLen + 6;
      if (colon > 0 && st + 2 <= end) this.addLine(text, proto, tcp, addrLen, la, ra, st, end);
      pos = end + 1;
    }
  }

  private addLine(text: string, proto: RawSocket['proto'], tcp: boolean, addrLen: number, la: number, ra: number, st: number, end: number): void {
    const c0 = text.charCodeAt(st);
    const c1 = text.charCodeAt(st + 1);
    if (tcp && c0 === 48 && c1 === 54) {
      // '06': TIME_WAIT, the bulk of a busy server's table: counted without a string or a match
      this.timeWait++;
      return;
    }
    TAIL.lastIndex = st + 2;
    const m = TAIL.exec(text);
    if (!m || m.index + m[0].length > end) return;
    const state = (hexDigit(c0) << 4) | hexDigit(c1);
    let listening: boolean;
    if (tcp) {
      this.tcpStates[state & 15] = this.tcpStates[state & 15]! + 1;
      listening = state === 0x0a;
    } else {
      this.udp++;
      // UDP: 07 (closed, i.e. not connected) with no peer port
      listening = state === 0x07 && text.startsWith('0000', ra + addrLen + 1);
    }
    const inode = Number(m[2]);
    if (this.count === this.inodes.length) {
      const inodes = new Float64Array(this.count * 2);
      inodes.set(this.inodes);
      this.inodes = inodes;
      const kinds = new Uint8Array(this.count * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
    }
    this.inodes[this.count] = inode;
    this.kinds[this.count++] = (tcp ? 1 : 0) | (listening ? 2 : 0);
    const list = listening ? this.listening : this.others;
    if (list.length >= KEPT_SOCKETS) {
      this.dropped++;
      return;
    }
    list.push({
      proto,
      localAddress: hexAddress(text.slice(la, la + addrLen)),
      localPort: parseInt(text.slice(la + addrLen + 1, la + addrLen + 5), 16),
      remoteAddress: hexAddress(text.slice(ra, ra + addrLen)),
      remotePort: parseInt(text.slice(ra + addrLen + 1, ra + addrLen + 5), 16),
      stateCode: text.slice(st, st + 2),
      uid: Number(m[1]),
      inode,
    });
  }
}

// after the state: " tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode"
const TAIL = / +[0-9A-Fa-f]+:[0-9A-Fa-f]+ +[0-9A-Fa-f]+:[0-9A-Fa-f]+ +[0-9A-Fa-f]+ +(\d+) +-?\d+ +(\d+)/y;

/** The value of an upper-case hex digit's character code ('0'…'9', 'A'…'F'). */
function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : (c | 32) - 87;
}

/** One table's text (header line first), parsed: for tests and the fixed-text callers. */
export function parseInetTable(text: string, proto: RawSocket['proto'], into = new InetTable()): InetTable {
  const nl = text.indexOf('\n');
  if (nl >= 0) into.addLines(text.slice(nl + 1), proto);
  return into;
}

/** /proc/net/{tcp,tcp6,udp,udp6}, read a buffer at a time, in slices when a Slicer is given. */
export async function readInetTable(procRoot: string, slicer?: Slicer, protos: RawSocket['proto'][] = ['tcp', 'tcp6', 'udp', 'udp6']): Promise<InetTable> {
  const t = new InetTable();
  for (const p of protos) await readTableLines(join(procRoot, 'net', p), (text) => t.addLines(text, p), slicer);
  return t;
}

/**
 * The inet socket tables, read once per collection time: the processes and connections collectors
 * both need them when they run in the same tick (same `now`). Reading /proc/net/tcp costs kernel
 * time for every bucket of the host's connection hash table (sized from its memory) plus every
 * socket, TIME_WAIT included.
 */
export class InetTables {
  private cache: Promise<InetTable> | undefined;
  private readAt = NaN;
  constructor(
    private readonly procRoot: string,
    private readonly sliceMs?: number,
  ) {}

  get(now: number): Promise<InetTable> {
    if (now !== this.readAt || !this.cache) {
      this.cache = readInetTable(this.procRoot, new Slicer(this.sliceMs));
      this.readAt = now;
    }
    return this.cache;
  }
}

export function fileMtimeMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}
