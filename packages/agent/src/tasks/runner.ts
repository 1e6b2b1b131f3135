/**
 * Runs one command: argv straight to execve (a shell only when asked for), in its own process
 * group so that kill and timeout reach every child, as another user when asked, with a clean
 * environment (never the agent's own, which may hold its enrollment token), bounded output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { ExecSpec, TaskStatus } from '@tether/protocol';
import { DEFAULT_TASK_OUTPUT } from '@tether/protocol';
import { lookupUser } from '../accounts.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** After SIGTERM on timeout, SIGKILL follows this much later. */
export const KILL_GRACE_MS = 5000;

/** Keeps the first quarter and the last three quarters of a stream's bytes; counts all of them. */
export class OutputKeeper {
  total = 0;
  private head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  readonly headMax: number;
  readonly tailMax: number;
  constructor(readonly max: number) {
    this.headMax = Math.floor(max / 4);
    this.tailMax = max - this.headMax;
  }
  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.headLen < this.headMax) {
      const take = Math.min(chunk.length, this.headMax - this.headLen);
      this.head.push(chunk.subarray(0, take));
      this.headLen += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    while (this.tailLen - this.tail[0]!.length >= this.tailMax) this.tailLen -= this.tail.shift()!.length;
  }
  /** Counts `n` bytes that were never read (cut out of a file): the tail kept so far no longer joins what follows, so it goes too. */
  skip(n: number): void {
    if (n <= 0) return;
    this.total += n;
    this.tail = [];
    this.tailLen = 0;
  }
  get truncated(): boolean {
    return this.total > this.headLen + Math.min(this.tailLen, this.tailMax);
  }
  text(): string {
    const head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.tailMax) tail = tail.subarray(tail.length - this.tailMax);
    if (!this.truncated) return Buffer.concat([head, tail]).toString('utf8');
    const cut = this.total - head.length - tail.length;
    return `${head.toString('utf8')}\n…[${cut} bytes not kept]…\n${tail.toString('utf8')}`;
  }
}

export interface RunOutcome {
  status: TaskStatus;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  startedAt: number;
  endedAt: number;
  error?: string;
}

export class ExecError extends Error {}

export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const TERMINATING = new Set(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGHUP']);

/** Quotes one word for a POSIX shell: everything inside single quotes, quotes themselves escaped. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface Prepared {
  file: string;
  args: string[];
  uid?: number;
  gid?: number;
  env: Record<string, string>;
}

/** Turns a spec into what to execve, or throws ExecError with a sentence saying why not. */
export function prepare(spec: ExecSpec, agentUid = process.getuid?.() ?? 0): Prepared {
  if (spec.shell && spec.command.length !== 1) throw new ExecError('with shell: true, command must be exactly one script string');
  if (spec.command[0]!.length === 0) throw new ExecError('empty command');
  if (spec.command.some((a) => a.includes('\0'))) throw new ExecError('arguments may not contain NUL bytes');
  const argv = spec.shell ? ['/bin/sh', '-c', spec.command[0]!] : [...spec.command];
  const env: Record<string, string> = { PATH: DEFAULT_PATH, LANG: 'C.UTF-8' };
  let uid: number | undefined;
  let gid: number | undefined;
  const method = spec.runAs ?? 'setuid';
  if (spec.user) {
    const u = lookupUser(spec.user);
    if (!u) throw new ExecError(`no such user ${JSON.stringify(spec.user)} on this host`);
    Object.assign(env, { HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: u.shell || '/bin/sh' });
    if (method === 'setuid') {
      if (u.uid !== agentUid && agentUid !== 0) throw new ExecError(`running as ${u.name} needs the agent to run as root (it runs as uid ${agentUid}); or use runAs sudo`);
      uid = u.uid;
      gid = u.gid;
    } else if (method === 'sudo') {
      // -n: never prompt (fail instead); -H: the target's HOME; env passed explicitly below.
      const pass = Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`);
      argv.unshift('sudo', '-n', '-H', '-u', u.name, '--', ...(pass.length ? ['/usr/bin/env', ...pass] : []));
    } else {
      // su runs its argument through the user's shell: quote every word so that it stays one word.
      const line = argv.map(shellQuote).join(' ');
      argv.splice(0, argv.length, 'su', '-s', '/bin/sh', '-c', line, u.name);
    }
  } else {
    const self = lookupUser(String(agentUid));
    if (self) Object.assign(env, { HOME: self.home, USER: self.name, LOGNAME: self.name });
  }
  Object.assign(env, spec.env ?? {});
  if (spec.cwd) {
    let st;
    try {
      st = statSync(spec.cwd);
    } catch {
      throw new ExecError(`working directory ${spec.cwd} does not exist`);
    }
    if (!st.isDirectory()) throw new ExecError(`working directory ${spec.cwd} is not a directory`);
  }
  return { file: argv[0]!, args: argv.slice(1), ...(uid !== undefined ? { uid, gid } : {}), env };
}

export interface RunHandle {
  pid: number | undefined;
  done: Promise<RunOutcome>;
  kill(signal: NodeJS.Signals): boolean;
  /** live output chunks of this handle are numbered from here (a task re-attached after a restart continues above what came before) */
  seqBase?: number;
  /** the agent stops: stop following the command, which keeps running (tasks/detached.ts) */
  release?(): void;
}

/**
 * Starts the command. `onOutput` receives decoded text as it arrives (for live streaming).
 * Never throws: a command that cannot start resolves with status `failed`.
 */
export function runExec(spec: ExecSpec, onOutput?: (stream: 'stdout' | 'stderr', text: string) => void, now = Date.now): RunHandle {
  const startedAt = now();
  const max = spec.maxOutput ?? DEFAULT_TASK_OUTPUT;
  const out = new OutputKeeper(max);
  const err = new OutputKeeper(max);
  const failed = (message: string): RunHandle => ({
    pid: undefined,
    kill: () => false,
    done: Promise.resolve({ status: 'failed', exitCode: null, signal: null, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, truncated: false, startedAt, endedAt: now(), error: message }),
  });
  let p: Prepared;
  try {
    p = prepare(spec);
  } catch (e) {
    return failed((e as Error).message);
  }
  let child: ChildProcess;
  try {
    child = spawn(p.file, p.args, {
      cwd: spec.cwd ?? (p.env.HOME && isDir(p.env.HOME) ? p.env.HOME : '/'),
      env: p.env,
      detached: true, // its own process group: kill and timeout reach the whole tree
      stdio: [spec.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...(p.uid !== undefined ? { uid: p.uid, gid: p.gid } : {}),
      windowsHide: true,
    });
  } catch (e) {
    return failed(`cannot start ${p.file}: ${(e as Error).message}`);
  }
  let killedBy: string | undefined;
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const signalGroup = (sig: NodeJS.Signals): boolean => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
    try {
      process.kill(-child.pid, sig);
      return true;
    } catch {
      try {
        return child.kill(sig);
      } catch {
        return false;
      }
    }
  };
  const timeout = spec.timeoutSec
    ? setTimeout(() => {
        timedOut = true;
        signalGroup('SIGTERM');
        killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
      }, spec.timeoutSec * 1000)
    : undefined;
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  child.stdout!.on('data', (b: Buffer) => {
    out.push(b);
    if (onOutput) {
      const t = decoders.stdout.write(b);
      if (t) onOutput('stdout', t);
    }
  });
  child.stderr!.on('data', (b: Buffer) => {
    err.push(b);
    if (onOutput) {
      const t = decoders.stderr.write(b);
      if (t) onOutput('stderr', t);
    }
  });
  if (child.stdin) {
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(spec.stdin);
  }
  const done = new Promise<RunOutcome>((resolve) => {
    let spawnError: string | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code === 'ENOENT' ? `command not found: ${p.file}` : e.code === 'EACCES' ? `permission denied: ${p.file}` : `cannot start ${p.file}: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      if (onOutput) {
        const a = decoders.stdout.end();
        if (a) onOutput('stdout', a);
        const b = decoders.stderr.end();
        if (b) onOutput('stderr', b);
      }
      const status: TaskStatus = spawnError && child.pid === undefined ? 'failed' : timedOut ? 'timeout' : killedBy ? 'killed' : spawnError ? 'failed' : 'exited';
      resolve({
        status,
        exitCode: spawnError ? null : code,
        signal: signal ?? null,
        stdout: out.text(),
        stderr: err.text(),
        stdoutBytes: out.total,
        stderrBytes: err.total,
        truncated: out.truncated || err.truncated,
        startedAt,
        endedAt: now(),
        ...(spawnError ? { error: spawnError } : timedOut ? { error: `timed out after ${spec.timeoutSec} s` } : {}),
      });
    });
  });
  return {
    pid: child.pid,
    done,
    kill(sig) {
      const ok = signalGroup(sig);
      if (ok && TERMINATING.has(sig)) killedBy ??= sig;
      return ok;
    },
  };
}
