/**
 * Transient systemd scopes for what the agent starts (task_scopes = "auto"): a command, job or
 * terminal goes through `systemd-run --scope`, which asks PID 1 for a new scope unit, moves itself
 * into it and then execs the command, so the command keeps the pid, process group, environment and
 * working directory it was given, but lives in its own cgroup beside the agent's service rather than
 * inside it. Hence a MemoryMax or CPUQuota on the agent binds the agent alone, stopping or
 * restarting the agent (KillMode=control-group) leaves the command running, and a runaway command
 * cannot starve the agent.
 *
 * Only where it works without asking anyone: the agent runs as root, systemd is the init system
 * (/run/systemd/system, as sd_booted(3) checks) and systemd-run is installed. Elsewhere (containers
 * without systemd, the test machines, network-namespace test hosts) commands stay the agent's
 * children, as before.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TaskScopes } from '../config.js';
import { DEFAULT_PATH } from './runner.js';

export interface ScopeSupport {
  /** systemd-run's absolute path */
  systemdRun: string;
  /** systemctl's absolute path (kill) */
  systemctl: string;
}

/** Finds an executable on a PATH-like list of directories. */
export function findExecutable(name: string, path = DEFAULT_PATH): string | undefined {
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch {
      /* not here */
    }
  }
  return undefined;
}

let detected: { support: ScopeSupport | undefined } | undefined;

/** Whether this agent can start scopes (root, systemd as init, systemd-run present); checked once. */
export function scopeSupport(): ScopeSupport | undefined {
  if (detected) return detected.support;
  let support: ScopeSupport | undefined;
  if (process.getuid?.() === 0 && existsSync('/run/systemd/system')) {
    const path = `${DEFAULT_PATH}:${process.env.PATH ?? ''}`;
    const systemdRun = findExecutable('systemd-run', path);
    const systemctl = findExecutable('systemctl', path);
    if (systemdRun && systemctl) support = { systemdRun, systemctl };
  }
  detected = { support };
  return support;
}

/** What task_scopes asks for, on this host: the scope support, or undefined for plain children. */
export function scopesFor(setting: TaskScopes | undefined): ScopeSupport | undefined {
  return setting === 'off' ? undefined : scopeSupport();
}

/**
 * `tether-task-<id>-<random>` (or tether-terminal-…): what systemd allows in a unit name
 * (letters, digits, `:_.-`), the id cut to 64 characters; the random part keeps a name unique should
 * an id ever come back while an older scope of it still lingers.
 */
export function scopeUnitName(kind: 'task' | 'terminal', id: string): string {
  const clean = id.replace(/[^A-Za-z0-9:_.-]/g, '_').slice(0, 64) || '_';
  return `tether-${kind}-${clean}-${randomBytes(4).toString('hex')}`;
}

export interface ScopeOptions {
  /** without `.scope` */
  unit: string;
  description: string;
  /** switch to this uid/gid before the exec (systemd-run does it, since it must ask PID 1 as root) */
  uid?: number;
  gid?: number;
}

/**
 * systemd-run's arguments before the command: `--scope` (this process, moved into a new scope, then
 * exec'd: same pid, process group, environment and cwd), `--collect` (unloaded once empty, even if it
 * failed), `--quiet` (no "Running scope as unit" on the command's stderr), `--no-ask-password`
 * (never a password agent, e.g. on a terminal's tty). Argument arrays only: nothing is parsed by a shell.
 */
export function scopeArgs(o: ScopeOptions): string[] {
  return [
    '--scope',
    '--quiet',
    '--collect',
    '--no-ask-password',
    `--unit=${o.unit}`,
    `--description=${o.description.replace(/[^\x20-\x7e]/g, '?')}`,
    ...(o.uid !== undefined ? [`--uid=${o.uid}`] : []),
    ...(o.gid !== undefined ? [`--gid=${o.gid}`] : []),
    '--',
  ];
}

/**
 * Sends a signal to every process in a scope (`systemctl kill`: those that left the task's process
 * group included). Resolves false when systemd refused (no such unit: it ended, or is not set up yet).
 */
export function killScope(s: ScopeSupport, unit: string, signal: NodeJS.Signals): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(s.systemctl, ['kill', '--kill-whom=all', `--signal=${signal}`, '--', `${unit}.scope`], { timeout: 10_000, env: { PATH: DEFAULT_PATH, LANG: 'C.UTF-8' } }, (err) => resolve(!err));
  });
}

/** Whether the process `pid` lives in the scope `unit` (its /proc/PID/cgroup names it). */
export function inScope(pid: number, unit: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${unit}.scope\n`);
  } catch {
    return false;
  }
}
