/**
 * Tasks that do not hang on the agent: what runs in a scope (scope.ts) must outlive an agent restart,
 * and a command piped to the agent does not, in effect: once the agent is gone its next write gets
 * EPIPE or SIGPIPE, and no one is left to learn how it ended. So such a task gets files instead of
 * pipes, in its own directory under the agent's state directory, and a small waiter shell between
 * the scope and the command writes down its exit status:
 *
 *   <state>/tasks/<id>/stdout, stderr   the command's fd 1 and 2, opened O_APPEND by the agent
 *                      stdin            the request's stdin, the command's fd 0 (when it has one)
 *                      exit             "<status>\n", written by the waiter once the command has ended
 *                      meta.json        the waiter's pid and start time, the scope, timeout, output budget…
 *                      progress.json    how many bytes of each stream were cut out of its file
 *
 * The agent opens every file itself and hands the open descriptors over (0, 1, 2, and 3 for the
 * exit status), so the waiter names no path and needs no access to the state directory, whoever it
 * runs as. The waiter's script is a constant; the command is its positional parameters, never text
 * in the script.
 *
 * The agent follows the files (fs.watch on the directory, with a poll every 250 ms behind it) into
 * the same OutputKeeper a piped command's output goes to, and streams them live. A new agent that
 * finds the task in its ledger as running re-attaches (reattachTask): it reads the files from where
 * they are, waits for the exit file, or for the waiter to be gone without one (then the task is
 * lost, with the output there was), and reports the real result.
 *
 * Disk use: once a stream's file has passed FILE_CAP, the agent has read it to its end and nothing
 * was appended since its previous read, the file is cut back to the head of the output (the first
 * quarter of the output budget), so a re-attaching agent still finds the head there; the bytes cut
 * out are counted in progress.json. A command that writes without a pause is cut at 4 × FILE_CAP
 * all the same, and what it writes between the agent's last read and that cut (microseconds) is
 * neither kept nor counted: its byte count may fall short by that much. While no agent runs nothing
 * cuts the files; the next agent skips to their last tail's worth.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { DEFAULT_TASK_OUTPUT, type ExecSpec, type TaskStatus } from '@tether/protocol';
import { DEFAULT_PATH, KILL_GRACE_MS, OutputKeeper, isDir, prepare, runExec, type RunHandle, type RunOutcome } from './runner.js';
import { findExecutable, inScope, killScope, scopeArgs, type ScopeSupport } from './scope.js';

/**
 * The waiter, run as `/bin/sh -c WAITER_SCRIPT tether-task COMMAND ARGS…`. Its own stderr goes to
 * /dev/null (else a shell reports "Terminated" for a command a signal ended); the command gets the
 * real one back (fd 4) in a subshell that execs it, so its redirections never touch the waiter.
 * The traps let the waiter live through the signals a kill sends to the whole process group or
 * scope (trapped, not ignored: the command gets them with their default action) and record the end.
 * The command is always a path (resolved beforehand), so it is never taken for a shell builtin.
 */
export const WAITER_SCRIPT = 'exec 4>&2 2>/dev/null; trap : HUP INT QUIT TERM USR1 USR2; (exec "$@" 2>&4 3>&- 4>&-); echo "$?" >&3';
export const WAITER_NAME = 'tether-task';

/** A stream's file is cut back to its head once it passes this many bytes and the command pauses (at 4 × this if it never does). */
export const FILE_CAP = 2 * 1024 * 1024;
const POLL_MS = 250;
const CHUNK = 64 * 1024;
/** bytes read from one stream in one turn of the event loop, so that a flood never holds it */
const TURN_BYTES = 1024 * 1024;

/**
 * A task id as a file name: ids may be `.` or `..` (the protocol allows dots), which must never name
 * a directory above the task's own; a leading dot becomes `%2E` (no id holds a `%`, so no two meet).
 */
export function taskFileName(id: string): string {
  return id.startsWith('.') ? `%2E${id.slice(1)}` : id;
}

/** Where a task runs, when it is not simply the agent's child. */
export interface Placement {
  /** the task's own directory, `<state>/tasks/<id>` (created here) */
  dir: string;
  /** the transient scope it starts in; absent: the waiter is the agent's child (tests, no systemd) */
  scope?: ScopeSupport & { unit: string; description: string };
  /** to remove once its end is known, should an agent re-attach to it (a bundle's directory); inside the state directory only */
  cleanup?: string[];
}

/** An exec spec as the agent hands it on: with a placement, it runs detached from the agent. */
export type TaskExecSpec = ExecSpec & { placement?: Placement };

type OnOutput = (stream: 'stdout' | 'stderr', text: string) => void;

/** Runs a task: detached (files, a waiter, a scope) when it has a placement, else piped (runner.ts). */
export function runTask(spec: TaskExecSpec, onOutput?: OnOutput, now = Date.now): RunHandle {
  return spec.placement ? startDetached(spec, spec.placement, onOutput, now) : runExec(spec, onOutput, now);
}

interface Meta {
  v: 1;
  /** the waiter (systemd-run until it execs): its pid, and its start time so that a reused pid is not taken for it */
  pid: number;
  pidStart: string;
  unit?: string;
  startedAt: number;
  timeoutSec?: number;
  maxOutput: number;
  /** live output was asked for */
  stream: boolean;
  deleteAfter?: string;
  cleanup?: string[];
  /** how many agents re-attached to it */
  attach: number;
  killedBy?: string;
  timedOut?: boolean;
}

function writeJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** State and start time (field 22 of /proc/PID/stat, in clock ticks since boot). */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, start: f[19]! };
  } catch {
    return undefined;
  }
}

function sameProcess(m: Pick<Meta, 'pid' | 'pidStart'>): boolean {
  const st = procStat(m.pid);
  return st !== undefined && st.state !== 'Z' && st.start === m.pidStart;
}

/** The waiter still runs: the same process (pid and start time), and in the task's scope if it has one. */
export function waiterAlive(m: Pick<Meta, 'pid' | 'pidStart' | 'unit'>): boolean {
  return sameProcess(m) && (m.unit === undefined || inScope(m.pid, m.unit));
}

/** The command's status as the waiter wrote it, once it is all there. */
function readExit(dir: string): number | undefined {
  try {
    const m = /^(\d{1,3})\n$/.exec(readFileSync(join(dir, 'exit'), 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const SIGNAL_BY_NUMBER = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

/**
 * What execvp would run, as a path (so that the waiter never takes it for a builtin), or why it
 * cannot run: the same "command not found" / "permission denied" a piped start reports.
 */
export function resolveCommand(file: string, path: string, cwd: string): string | { error: string } {
  if (file.includes('/')) {
    try {
      const p = resolve(cwd, file);
      if (!statSync(p).isFile()) return { error: `permission denied: ${file}` };
      accessSync(p, constants.X_OK);
      return file;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { error: code === 'ENOENT' || code === 'ENOTDIR' ? `command not found: ${file}` : `permission denied: ${file}` };
    }
  }
  return findExecutable(file, path) ?? { error: `command not found: ${file}` };
}

/** One stream's file, read as it grows. */
class StreamFile {
  private fd: number | undefined;
  private pos = 0;
  /** bytes cut out of the file after its head */
  dropped = 0;
  /** cut-out bytes an earlier agent counted, to count once the head has been read */
  private pendingSkip = 0;
  private decoder = new StringDecoder('utf8');
  /** where the previous read ended, past FILE_CAP: still the end at the next read means a pause, time to cut */
  private readTo = -1;
  emit: ((text: string) => void) | undefined;

  constructor(
    private readonly path: string,
    readonly keeper: OutputKeeper,
    private readonly onCut: () => void,
  ) {}

  restore(dropped: number): void {
    this.dropped = dropped;
    this.pendingSkip = dropped;
  }

  private skip(n: number): void {
    this.keeper.skip(n);
    this.decoder = new StringDecoder('utf8');
  }

  /** Reads what was appended, at most `budget` bytes; true when more is waiting. `final`: to the end it has now, and no cut. */
  pump(budget: number, final = false): boolean {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, 'r+');
      } catch {
        return false;
      }
    }
    const head = this.keeper.headMax;
    let size = fstatSync(this.fd).size;
    if (size < this.pos) this.pos = size; // cut by someone else: go on from its end
    for (;;) {
      if (this.pos >= head && this.pendingSkip > 0) {
        this.skip(this.pendingSkip);
        this.pendingSkip = 0;
      }
      if (this.pos >= head && size - this.pos > FILE_CAP) {
        // Far behind (an agent that was away, or a flood): on from the last tail's worth.
        const to = size - this.keeper.tailMax;
        this.skip(to - this.pos);
        this.pos = to;
      }
      if (this.pos >= size) {
        if (final) break;
        size = fstatSync(this.fd).size;
        if (this.pos >= size) break;
      }
      if (budget <= 0) return true;
      const want = Math.min(CHUNK, size - this.pos, budget, this.pos < head ? head - this.pos : CHUNK);
      const scratch = Buffer.allocUnsafe(want);
      const n = readSync(this.fd, scratch, 0, want, this.pos);
      if (n <= 0) break;
      // A copy of what was read: the keeper holds on to its chunks.
      const chunk = n === want ? scratch : Buffer.from(scratch.subarray(0, n));
      this.keeper.push(chunk);
      if (this.emit) {
        const t = this.decoder.write(chunk);
        if (t) this.emit(t);
      }
      this.pos += n;
      budget -= n;
    }
    if (!final && this.pos > FILE_CAP) {
      if (this.readTo !== this.pos && this.pos <= 4 * FILE_CAP) {
        this.readTo = this.pos;
        return false;
      }
      // Read to its end, and nothing came since: cut back to the head (O_APPEND writers go on after it).
      ftruncateSync(this.fd, head);
      this.dropped += this.pos - head;
      this.pos = head;
      this.readTo = -1;
      this.onCut();
    }
    return false;
  }

  end(): void {
    const t = this.decoder.end();
    if (t && this.emit) this.emit(t);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

interface FollowOptions {
  dir: string;
  meta: Meta;
  onOutput: OnOutput | undefined;
  now: () => number;
  scope: ScopeSupport | undefined;
  /** a fresh start: the waiter is this child, and its end is the task's */
  child?: ChildProcess;
  spawnError?: () => string | undefined;
}

/** Follows a task's files until it ends; kill and timeout by its scope (or process group). */
function follow(o: FollowOptions): RunHandle {
  const { dir, meta } = o;
  const reattached = o.child === undefined;
  const progressFile = join(dir, 'progress.json');
  const saveProgress = () => writeJson(progressFile, { stdout: files.stdout.dropped, stderr: files.stderr.dropped });
  const files = {
    stdout: new StreamFile(join(dir, 'stdout'), new OutputKeeper(meta.maxOutput), saveProgress),
    stderr: new StreamFile(join(dir, 'stderr'), new OutputKeeper(meta.maxOutput), saveProgress),
  };
  if (reattached) {
    // What an earlier agent read and sent is in the result, not sent again live.
    const p = readJson<{ stdout?: number; stderr?: number }>(progressFile) ?? {};
    for (const s of ['stdout', 'stderr'] as const) {
      files[s].restore(Number.isSafeInteger(p[s]) && p[s]! > 0 ? p[s]! : 0);
      files[s].pump(Infinity, true);
    }
  }
  if (o.onOutput && meta.stream) for (const s of ['stdout', 'stderr'] as const) files[s].emit = (t) => o.onOutput!(s, t);

  let ended = false;
  let released = false;
  let timedOut = meta.timedOut === true;
  let killedBy = meta.killedBy;
  let lastSignal: string | undefined;
  let resolveDone!: (r: RunOutcome) => void;
  const done = new Promise<RunOutcome>((r) => (resolveDone = r));
  let again: NodeJS.Immediate | undefined;
  let termTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;

  const pumpAll = () => {
    again = undefined;
    if (ended || released) return;
    const more = [files.stdout.pump(TURN_BYTES), files.stderr.pump(TURN_BYTES)].some(Boolean);
    if (more) again = setImmediate(pumpAll);
  };
  try {
    watcher = watch(dir, () => {
      again ??= setImmediate(pumpAll);
    });
    watcher.on('error', () => {});
  } catch {
    /* the poll alone */
  }
  const poll = setInterval(() => {
    pumpAll();
    // Not its parent: the exit file, or the waiter gone without one, says it ended.
    if (reattached && !ended && (readExit(dir) !== undefined || !waiterAlive(meta))) finish('gone');
  }, POLL_MS);

  const persist = (patch: Partial<Meta>) => {
    Object.assign(meta, patch);
    try {
      writeJson(join(dir, 'meta.json'), meta);
    } catch {
      /* the directory is gone: so is the task */
    }
  };
  const signalGroup = (sig: NodeJS.Signals): boolean => {
    if (!meta.pid || !sameProcess(meta)) return false;
    try {
      process.kill(-meta.pid, sig);
      return true;
    } catch {
      try {
        process.kill(meta.pid, sig);
        return true;
      } catch {
        return false;
      }
    }
  };
  const signal = (sig: NodeJS.Signals): boolean => {
    if (ended) return false;
    lastSignal = sig;
    if (o.scope && meta.unit) {
      // Every process in the scope, those that left the process group too; the group when the
      // scope is not there (yet: systemd-run is still setting it up).
      const unit = meta.unit;
      void killScope(o.scope, unit, sig).then((ok) => {
        if (!ok) signalGroup(sig);
      });
      return true;
    }
    return signalGroup(sig);
  };
  const startKillTimer = () => {
    killTimer = setTimeout(() => signal('SIGKILL'), KILL_GRACE_MS);
  };
  if (meta.timedOut) startKillTimer(); // the agent before this one had begun it
  else if (meta.timeoutSec) {
    termTimer = setTimeout(
      () => {
        timedOut = true;
        persist({ timedOut: true });
        signal('SIGTERM');
        startKillTimer();
      },
      Math.max(0, meta.startedAt + meta.timeoutSec * 1000 - o.now()),
    );
  }

  const stop = () => {
    clearInterval(poll);
    clearTimeout(termTimer);
    clearTimeout(killTimer);
    if (again) clearImmediate(again);
    watcher?.close();
  };

  function finish(end: { code: number | null; signal: NodeJS.Signals | null } | 'gone'): void {
    if (ended || released) return;
    ended = true;
    stop();
    for (const f of [files.stdout, files.stderr]) {
      f.pump(Infinity, true);
      f.end();
    }
    const status = readExit(dir);
    let exitCode: number | null = null;
    let sig: string | null = null;
    let st: TaskStatus;
    let error: string | undefined;
    const endStatus = (): TaskStatus => (timedOut ? 'timeout' : killedBy ? 'killed' : 'exited');
    const spawnError = o.spawnError?.();
    if (status !== undefined) {
      // As a shell reports it: 128 + N when signal N ended the command.
      const name = status > 128 ? SIGNAL_BY_NUMBER.get(status - 128) : undefined;
      if (name) sig = name;
      else exitCode = status;
      st = endStatus();
    } else if (spawnError) {
      st = 'failed';
      error = spawnError;
    } else if (end !== 'gone' && end.signal) {
      sig = end.signal; // the waiter too (SIGKILL to the scope, say)
      st = endStatus();
    } else if (end === 'gone') {
      if (timedOut || killedBy) {
        st = endStatus();
        sig = lastSignal ?? killedBy ?? null;
      } else {
        st = 'lost';
        error = 'the agent restarted while this task ran, and the task ended without its exit status being recorded';
      }
    } else {
      st = 'failed';
      error = meta.unit ? `could not start the command in a scope of its own (systemd-run exited with status ${end.code}; its message is on stderr)` : `the task's waiter ended with status ${end.code} before the command's exit status was recorded`;
    }
    if (timedOut) error = `timed out after ${meta.timeoutSec} s`;
    const out = files.stdout.keeper;
    const err = files.stderr.keeper;
    // A re-attached bundle's directory: the agent that unpacked it is gone.
    const state = resolve(dir, '..', '..');
    for (const p of meta.cleanup ?? []) if (resolve(p).startsWith(state + '/')) rmSync(resolve(p), { recursive: true, force: true });
    resolveDone({
      status: st,
      exitCode,
      signal: sig,
      stdout: out.text(),
      stderr: err.text(),
      stdoutBytes: out.total,
      stderrBytes: err.total,
      truncated: out.truncated || err.truncated,
      startedAt: meta.startedAt,
      endedAt: o.now(),
      ...(error ? { error } : {}),
    });
  }

  if (o.child) o.child.on('close', (code, sig) => finish({ code, signal: sig }));
  else if (readExit(dir) !== undefined || !waiterAlive(meta)) finish('gone');

  return {
    pid: meta.pid || undefined,
    done,
    kill(sig) {
      const ok = signal(sig);
      if (ok && ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGHUP'].includes(sig) && !killedBy) {
        killedBy = sig;
        persist({ killedBy: sig });
      }
      return ok;
    },
    release() {
      if (ended || released) return;
      released = true;
      stop();
      for (const f of [files.stdout, files.stderr]) f.end();
    },
  };
}

function failedRun(message: string, startedAt: number, now: () => number): RunHandle {
  return {
    pid: undefined,
    kill: () => false,
    done: Promise.resolve({ status: 'failed', exitCode: null, signal: null, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, truncated: false, startedAt, endedAt: now(), error: message }),
  };
}

function startDetached(spec: ExecSpec, pl: Placement, onOutput: OnOutput | undefined, now: () => number): RunHandle {
  const startedAt = now();
  let p;
  try {
    p = prepare(spec);
  } catch (e) {
    return failedRun((e as Error).message, startedAt, now);
  }
  const cwd = spec.cwd ?? (p.env.HOME && isDir(p.env.HOME) ? p.env.HOME : '/');
  const file = resolveCommand(p.file, p.env.PATH ?? DEFAULT_PATH, cwd);
  if (typeof file !== 'string') return failedRun(file.error, startedAt, now);
  const sc = pl.scope;
  const fds: number[] = [];
  let child: ChildProcess;
  try {
    mkdirSync(pl.dir, { recursive: true, mode: 0o700 });
    const open = (name: string, flags: string) => {
      const fd = openSync(join(pl.dir, name), flags, 0o600);
      fds.push(fd);
      return fd;
    };
    if (spec.stdin !== undefined) writeFileSync(join(pl.dir, 'stdin'), spec.stdin, { mode: 0o600 });
    const stdio: StdioOptions = [spec.stdin !== undefined ? open('stdin', 'r') : 'ignore', open('stdout', 'a'), open('stderr', 'a'), open('exit', 'w')];
    const waiter = ['/bin/sh', '-c', WAITER_SCRIPT, WAITER_NAME, file, ...p.args];
    const argv = sc ? [sc.systemdRun, ...scopeArgs({ unit: sc.unit, description: sc.description, ...(p.uid !== undefined ? { uid: p.uid, gid: p.gid! } : {}) }), ...waiter] : waiter;
    // systemd-run switches uid and gid itself but keeps its caller's supplementary groups: the
    // agent's must not reach the command (a piped start drops them too).
    const groups = sc && p.uid !== undefined ? process.getgroups!() : undefined;
    if (groups) process.setgroups!([]);
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd,
        env: p.env,
        detached: true, // its own process group, as a piped command's
        stdio,
        ...(!sc && p.uid !== undefined ? { uid: p.uid, gid: p.gid } : {}),
        windowsHide: true,
      });
    } finally {
      if (groups) process.setgroups!(groups);
    }
  } catch (e) {
    return failedRun(`cannot start ${p.file}: ${(e as Error).message}`, startedAt, now);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  let spawnError: string | undefined;
  child.on('error', (e) => {
    spawnError = `cannot start ${p.file}: ${e.message}`;
  });
  const meta: Meta = {
    v: 1,
    pid: child.pid ?? 0,
    pidStart: (child.pid !== undefined && procStat(child.pid)?.start) || '',
    ...(sc ? { unit: sc.unit } : {}),
    startedAt,
    ...(spec.timeoutSec ? { timeoutSec: spec.timeoutSec } : {}),
    maxOutput: spec.maxOutput ?? DEFAULT_TASK_OUTPUT,
    stream: onOutput !== undefined,
    ...(spec.deleteAfter ? { deleteAfter: spec.deleteAfter } : {}),
    ...(pl.cleanup?.length ? { cleanup: pl.cleanup } : {}),
    attach: 0,
  };
  if (child.pid !== undefined) writeJson(join(pl.dir, 'meta.json'), meta);
  return follow({ dir: pl.dir, meta, onOutput, now, scope: sc, child, spawnError: () => spawnError });
}

export interface Reattached {
  handle: RunHandle;
  startedAt: number;
  /** the request's deleteAfter, for the manager to check and remove once it ended */
  deleteAfter?: string;
}

/**
 * Follows a task an earlier agent started, from its directory; undefined when there is nothing to
 * follow (no such directory, or it was never written down). Its live output goes on above every
 * chunk number the earlier agents could have used.
 */
export function reattachTask(dir: string, onOutput: OnOutput | undefined, o: { scope?: ScopeSupport; now?: () => number } = {}): Reattached | undefined {
  const meta = readJson<Meta>(join(dir, 'meta.json'));
  if (!meta || meta.v !== 1 || !Number.isSafeInteger(meta.pid) || meta.pid <= 0 || typeof meta.pidStart !== 'string' || !Number.isSafeInteger(meta.startedAt)) return undefined;
  meta.maxOutput = Number.isSafeInteger(meta.maxOutput) && meta.maxOutput > 0 ? meta.maxOutput : DEFAULT_TASK_OUTPUT;
  meta.attach = (Number.isSafeInteger(meta.attach) ? meta.attach : 0) + 1;
  writeJson(join(dir, 'meta.json'), meta);
  const handle = follow({ dir, meta, onOutput, now: o.now ?? Date.now, scope: o.scope });
  handle.seqBase = meta.attach * 2 ** 32;
  return { handle, startedAt: meta.startedAt, ...(typeof meta.deleteAfter === 'string' ? { deleteAfter: meta.deleteAfter } : {}) };
}
