// The floor under a full collection: record the file-system system calls that one collection makes
// (strace, the collecting thread only), then issue the same calls from C with nothing parsed
// (bench/floor/replay.c). Needs `strace` and a C compiler (`apt-get install -y strace gcc`).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Paths the traced child opens (and fails to) right before and after the collection it measures. */
export const FLOOR_MARK_START = '/proc/tether-bench-floor-start';
export const FLOOR_MARK_END = '/proc/tether-bench-floor-end';

const TRACED = 'openat,read,close,getdents64,statfs,readlink,readlinkat,socket';

export interface FloorOps {
  /** replay.c's input, one call a line */
  lines: string[];
  files: number;
  reads: number;
  dirs: number;
  statfs: number;
  readlinks: number;
  netlink: number;
}

/**
 * One thread's strace output (strace -ff) → the calls between the two marks. A file is one `F`
 * line with the number of reads its fd saw before close; a directory (O_DIRECTORY) one `D` line.
 * Undefined when the marks are not both there (not the collecting thread).
 */
export function straceToOps(text: string): FloorOps | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.includes(`"${FLOOR_MARK_START}"`));
  const end = lines.findIndex((l) => l.includes(`"${FLOOR_MARK_END}"`));
  if (start < 0 || end < start) return undefined;
  const out: FloorOps = { lines: [], files: 0, reads: 0, dirs: 0, statfs: 0, readlinks: 0, netlink: 0 };
  const open = new Map<number, { kind: 'F' | 'D'; path: string; reads: number }>();
  const rows: { kind: string; path: string; reads: number }[] = [];
  for (const line of lines.slice(start + 1, end)) {
    const m = /^(\w+)\((.*)\)\s+= (-?\d+)/.exec(line);
    if (!m) continue;
    const [, call, args, retText] = m;
    const ret = Number(retText);
    const path = /"([^"]*)"/.exec(args!)?.[1];
    if (call === 'openat' && ret >= 0 && path) {
      const entry = { kind: args!.includes('O_DIRECTORY') ? ('D' as const) : ('F' as const), path, reads: 0 };
      open.set(ret, entry);
      rows.push(entry);
    } else if (call === 'read') {
      const e = open.get(Number(args!.split(',')[0]));
      if (e) e.reads++;
    } else if (call === 'close') {
      open.delete(Number(args!.split(',')[0]));
    } else if (call === 'statfs' && path) {
      rows.push({ kind: 'S', path, reads: 0 });
    } else if ((call === 'readlink' || call === 'readlinkat') && path) {
      rows.push({ kind: 'L', path, reads: 0 });
    } else if (call === 'socket' && args!.includes('NETLINK_ROUTE')) {
      rows.push({ kind: 'N', path: '-', reads: 0 });
    }
  }
  for (const r of rows) {
    if (/\s/.test(r.path)) continue; // replay.c reads whitespace-separated paths; no collector opens such a path here
    out.lines.push(`${r.kind} ${r.reads} ${r.path}`);
    if (r.kind === 'F') { out.files++; out.reads += r.reads; }
    else if (r.kind === 'D') out.dirs++;
    else if (r.kind === 'S') out.statfs++;
    else if (r.kind === 'L') out.readlinks++;
    else out.netlink++;
  }
  return out;
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/** What is missing to measure the floor, or undefined when strace and cc are both there. */
export function floorMissing(): string | undefined {
  const missing = ['strace', 'cc'].filter((c) => !onPath(c));
  return missing.length ? `needs ${missing.join(' and ')}: apt-get install -y strace gcc` : undefined;
}

/** Runs `node <args>` under strace and returns the collecting thread's calls between the marks. */
export async function traceCollection(dir: string, nodeArgs: string[]): Promise<FloorOps> {
  const prefix = join(dir, 'trace');
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('strace', ['-ff', '-qq', '-s', '0', '-e', `trace=${TRACED}`, '-o', prefix, process.execPath, ...nodeArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`the traced collection exited ${code}`);
  for (const f of readdirSync(dir).filter((n) => n.startsWith('trace.'))) {
    const ops = straceToOps(readFileSync(join(dir, f), 'utf8'));
    if (ops) return ops;
  }
  throw new Error('no thread of the traced collection shows both marks');
}

export interface FloorRun {
  cpuMs: number;
  userMs: number;
  sysMs: number;
}

/**
 * Compiles replay.c into dir and writes the calls beside it, once; the function it returns replays
 * them `runs` times with the given flags and gives the median of `rounds` runs.
 */
export function floorReplayer(dir: string, source: string, ops: FloorOps): (runs: number, rounds: number, flags?: string[]) => FloorRun {
  const bin = join(dir, 'replay');
  const opsFile = join(dir, 'ops.txt');
  writeFileSync(opsFile, `${ops.lines.join('\n')}\n`);
  const cc = spawnSync('cc', ['-O2', '-o', bin, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc ${source}: ${cc.stderr}`);
  return (runs, rounds, flags = []) => {
    const results: FloorRun[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = spawnSync(bin, [opsFile, String(runs), ...flags], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`replay ${flags.join(' ')}: ${r.stderr}`);
      results.push(JSON.parse(r.stdout) as FloorRun);
    }
    results.sort((a, b) => a.cpuMs - b.cpuMs);
    return results[Math.floor(results.length / 2)]!;
  };
}
