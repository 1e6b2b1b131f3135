/**
 * The agent upgrading itself (`tether agent upgrade`), only where its own config says
 * `auto_update = true`, and only as install.sh laid it out:
 *
 *   <prefix>/<version>/            one artifact each (VERSION, MANIFEST.sha256, bin/, runtime/, lib/)
 *   <prefix>/current -> <version>  what the unit runs
 *   <prefix>/update.json           the trial of a new version, read by the agent and by its launcher
 *
 * An upgrade task fetches the artifact over the agent's authenticated transfer into
 * `<prefix>/.incoming/<file>.unverified`, checks its size and SHA-256 against the task, unpacks it,
 * checks every file against the artifact's manifest and its VERSION, moves it beside the running
 * version, writes the trial and switches `current`; then the agent exits and systemd starts the new
 * one. The new version has 60 s to reach its hub: then the trial is over (`ok`) and older versions
 * beyond the previous one are removed. If it does not, it switches `current` back, records why and
 * exits, and systemd starts the previous version again. A new version that cannot even start is
 * caught by its launcher, which reads the same trial and restores the previous version once the
 * deadline has passed.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { UpgradeSpec } from '@tether/protocol';
import type { RunHandle, RunOutcome } from './tasks/runner.js';

const pExecFile = promisify(execFile);

/** How long a new version has to reach its hub before the previous one is restored. */
export const TRIAL_MS = 60_000;

export interface Installed {
  /** the artifact folder this process runs from: <prefix>/<version> */
  home: string;
  prefix: string;
  version: string;
}

/** Where this process runs from, when it runs from an installed artifact (lib/tether.mjs inside it). */
export function installedHome(entry = process.argv[1]): Installed | undefined {
  if (!entry) return undefined;
  const home = resolve(dirname(entry), '..');
  try {
    const version = readFileSync(join(home, 'VERSION'), 'utf8').trim();
    if (!existsSync(join(home, 'MANIFEST.sha256')) || !/^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/.test(version)) return undefined;
    return { home, prefix: dirname(home), version };
  } catch {
    return undefined;
  }
}

export interface Trial {
  state: 'trial' | 'ok' | 'rolled-back';
  from: string;
  to: string;
  /** epoch seconds (the launcher compares it with `date +%s`) */
  deadline: number;
  at: string;
  why?: string;
}

const trialFile = (prefix: string) => join(prefix, 'update.json');

export function readTrial(prefix: string): Trial | undefined {
  try {
    const t = JSON.parse(readFileSync(trialFile(prefix), 'utf8')) as Trial;
    return typeof t.to === 'string' && typeof t.from === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** One line, keys in a fixed order: install's launcher reads it with sed. */
function writeTrial(prefix: string, t: Trial): void {
  const tmp = trialFile(prefix) + '.tmp';
  writeFileSync(tmp, JSON.stringify({ state: t.state, from: t.from, to: t.to, deadline: t.deadline, at: t.at, ...(t.why ? { why: t.why } : {}) }) + '\n', { mode: 0o644 });
  renameSync(tmp, trialFile(prefix));
}

/** Points `<prefix>/current` at `version`, atomically (a new link renamed over the old one). */
export function switchCurrent(prefix: string, version: string): void {
  const tmp = join(prefix, '.current.new');
  rmSync(tmp, { force: true });
  symlinkSync(version, tmp);
  renameSync(tmp, join(prefix, 'current'));
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** Checks every line of MANIFEST.sha256 (sha256sum format) and that nothing else is there. */
/** Whether `dir` holds version `version`, every file as its manifest says. */
async function intactVersion(dir: string, version: string): Promise<boolean> {
  try {
    if (readFileSync(join(dir, 'VERSION'), 'utf8').trim() !== version) return false;
    await verifyManifest(dir);
    return true;
  } catch {
    return false;
  }
}

async function verifyManifest(dir: string): Promise<void> {
  const lines = readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8').split('\n').filter(Boolean);
  const listed = new Set<string>();
  for (const line of lines) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new Error(`MANIFEST.sha256: not a checksum line: ${JSON.stringify(line.slice(0, 100))}`);
    const rel = m[2]!.replace(/^\.\//, '');
    if (rel.split('/').includes('..') || rel.startsWith('/')) throw new Error(`MANIFEST.sha256 names a path outside the artifact: ${rel}`);
    listed.add(rel);
    const got = await sha256File(join(dir, rel));
    if (got !== m[1]) throw new Error(`${rel} differs from the artifact's manifest`);
  }
  const walk = (d: string, base: string): void => {
    for (const e of readdirSync(join(d, base), { withFileTypes: true })) {
      const rel = base ? `${base}/${e.name}` : e.name;
      if (e.isDirectory()) walk(d, rel);
      else if (rel !== 'MANIFEST.sha256' && !listed.has(rel)) throw new Error(`${rel} is in the artifact but not in its manifest`);
    }
  };
  walk(dir, '');
}

export interface UpdaterOptions {
  installed: Installed | undefined;
  /** downloads a transfer from the hub into `dest` (the files service's fetchTransfer) */
  fetchTransfer: (transferId: string, dest: string, maxBytes: number) => Promise<unknown>;
  /** stops the agent so that systemd starts the version `current` names */
  restart: (why: string) => void;
  /** started by systemd (INVOCATION_ID): only then does stopping start the new version */
  underSystemd: boolean;
  log: Logger;
  /** for tests */
  now?: () => number;
  trialMs?: number;
  arch?: string;
}

export class Updater {
  private trialTimer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly o: UpdaterOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Runs an upgrade task; its outcome is the task's result (exit 0: installed, restarting into it). */
  run(spec: UpgradeSpec, onOutput: (s: 'stdout' | 'stderr', t: string) => void): RunHandle {
    const startedAt = this.now();
    const outcome = (code: 0 | 1, text: string): RunOutcome => ({
      status: 'exited',
      exitCode: code,
      signal: null,
      stdout: code === 0 ? text + '\n' : '',
      stderr: code === 0 ? '' : text + '\n',
      stdoutBytes: code === 0 ? Buffer.byteLength(text) + 1 : 0,
      stderrBytes: code === 0 ? 0 : Buffer.byteLength(text) + 1,
      truncated: false,
      startedAt,
      endedAt: this.now(),
    });
    const say = (t: string) => onOutput('stdout', t + '\n');
    const done = (async (): Promise<RunOutcome> => {
      if (this.busy) return outcome(1, 'another upgrade is in progress');
      this.busy = true;
      try {
        const text = await this.install(spec, say);
        return outcome(0, text);
      } catch (err) {
        return outcome(1, `upgrade to ${spec.version} refused: ${(err as Error).message}; still running ${this.o.installed?.version ?? 'this version'}`);
      } finally {
        this.busy = false;
      }
    })();
    void done.then((o) => {
      // The result is in the ledger's outbox before this runs: the new version sends it if this one cannot.
      if (o.exitCode === 0 && !o.stdout.startsWith('already')) setTimeout(() => this.o.restart(`upgrading to ${spec.version}`), 1500).unref();
    });
    return { pid: undefined, done, kill: () => false };
  }

  private async install(spec: UpgradeSpec, say: (t: string) => void): Promise<string> {
    const inst = this.o.installed;
    if (!inst) throw new Error('this agent does not run from an installed artifact (install.sh lays one out under /opt/tether-agent)');
    if (!this.o.underSystemd) throw new Error('this agent is not a systemd service: nothing would start the new version');
    const { prefix } = inst;
    let current: string;
    try {
      current = readlinkSync(join(prefix, 'current'));
    } catch {
      throw new Error(`${prefix}/current is not a link to a version`);
    }
    const arch = this.o.arch ?? process.arch;
    if (spec.arch !== arch) throw new Error(`the artifact is built for ${spec.arch}, this host is ${arch}`);
    if (spec.version === inst.version && current === inst.version) return `already running ${spec.version}`;
    const name = `tether-agent-${spec.version}-linux-${spec.arch}`;
    const incoming = join(prefix, '.incoming');
    rmSync(incoming, { recursive: true, force: true });
    mkdirSync(incoming, { recursive: true, mode: 0o700 });
    try {
      const unverified = join(incoming, `${name}.tar.gz.unverified`);
      say(`fetching ${name}.tar.gz (${spec.size} bytes)`);
      await this.o.fetchTransfer(spec.transferId, unverified, spec.size);
      const size = statSync(unverified).size;
      if (size !== spec.size) throw new Error(`the download has ${size} bytes, the hub announced ${spec.size}`);
      const sum = await sha256File(unverified);
      if (sum !== spec.sha256) throw new Error(`the download's SHA-256 is ${sum}, the hub announced ${spec.sha256}: damaged or tampered with`);
      const archive = join(incoming, `${name}.tar.gz`);
      renameSync(unverified, archive);
      say('checksum verified; unpacking');
      const x = join(incoming, 'x');
      mkdirSync(x, { mode: 0o700 });
      try {
        await pExecFile('tar', ['-xzf', archive, '-C', x, '--no-same-owner', '--no-same-permissions'], { timeout: 120_000 });
      } catch (err) {
        throw new Error(`the artifact does not unpack: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().slice(0, 300)}`);
      }
      const top = readdirSync(x);
      if (top.length !== 1 || top[0] !== name) throw new Error(`the artifact should hold one folder ${name}, it holds ${top.slice(0, 5).join(', ')}`);
      const dir = join(x, name);
      await verifyManifest(dir);
      const version = readFileSync(join(dir, 'VERSION'), 'utf8').trim();
      if (version !== spec.version) throw new Error(`the artifact says it is version ${version}, not ${spec.version}`);
      const target = join(prefix, spec.version);
      if (spec.version !== inst.version) {
        if (await intactVersion(target, spec.version)) {
          // Already there and whole (the version install.sh put there, going back to it): kept as it
          // is. It may be root's, which an unprivileged agent could not replace anyway.
          say(`${target} is already there and intact: switching to it`);
        } else {
          rmSync(target, { recursive: true, force: true });
          renameSync(dir, target);
        }
      }
      writeTrial(prefix, { state: 'trial', from: inst.version, to: spec.version, deadline: Math.ceil((this.now() + (this.o.trialMs ?? TRIAL_MS)) / 1000) + 5, at: new Date(this.now()).toISOString() });
      switchCurrent(prefix, spec.version);
      this.o.log.info({ from: inst.version, to: spec.version }, 'upgrade installed; restarting into it');
      return `installed ${spec.version} beside ${inst.version}; restarting into it (back to ${inst.version} unless it reaches the hub within ${Math.round((this.o.trialMs ?? TRIAL_MS) / 1000)} s)`;
    } finally {
      rmSync(incoming, { recursive: true, force: true });
    }
  }

  /**
   * At start: a version on trial has until the deadline to reach its hub. `connected` is called by
   * the agent on its first welcome.
   */
  startTrial(): { connected: () => void } {
    const inst = this.o.installed;
    const t = inst && readTrial(inst.prefix);
    if (!inst || !t || t.state !== 'trial' || t.to !== inst.version) return { connected: () => {} };
    const left = Math.max(0, t.deadline * 1000 - this.now());
    this.o.log.info({ from: t.from, to: t.to, secondsLeft: Math.round(left / 1000) }, 'this version is on trial: it must reach the hub');
    this.trialTimer = setTimeout(() => this.rollBack(t, `version ${t.to} did not reach the hub within ${Math.round((this.o.trialMs ?? TRIAL_MS) / 1000)} s`), left);
    this.trialTimer.unref();
    return {
      connected: () => {
        if (!this.trialTimer) return;
        clearTimeout(this.trialTimer);
        this.trialTimer = undefined;
        writeTrial(inst.prefix, { ...t, state: 'ok', at: new Date(this.now()).toISOString() });
        this.o.log.info({ from: t.from, to: t.to }, 'upgrade confirmed: the new version reached the hub');
        this.prune(inst.prefix, [t.to, t.from]);
      },
    };
  }

  private rollBack(t: Trial, why: string): void {
    const inst = this.o.installed!;
    this.trialTimer = undefined;
    if (!existsSync(join(inst.prefix, t.from, 'bin', 'tether-agent'))) {
      this.o.log.error({ from: t.from }, `${why}, and the previous version is gone: staying`);
      return;
    }
    this.o.log.error({ from: t.to, to: t.from }, `${why}: restoring ${t.from}`);
    writeTrial(inst.prefix, { ...t, state: 'rolled-back', why, at: new Date(this.now()).toISOString() });
    switchCurrent(inst.prefix, t.from);
    this.o.restart(`rolling back to ${t.from}`);
  }

  /** Removes versions other than `keep` (a failed removal is left for the next upgrade). */
  private prune(prefix: string, keep: string[]): void {
    for (const e of readdirSync(prefix, { withFileTypes: true })) {
      if (!e.isDirectory() || keep.includes(e.name) || !/^[0-9]+\.[0-9]+\.[0-9]+/.test(e.name)) continue;
      try {
        rmSync(join(prefix, e.name), { recursive: true });
        this.o.log.info({ version: e.name }, 'removed an old version');
      } catch (err) {
        this.o.log.warn({ version: e.name, err: (err as Error).message }, 'could not remove an old version');
      }
    }
  }

  stop(): void {
    clearTimeout(this.trialTimer);
  }
}
