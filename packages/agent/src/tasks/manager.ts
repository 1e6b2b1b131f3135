/**
 * The agent's side of tasks: the capability lock, the idempotency check, running, live output,
 * and results that survive disconnects and restarts (see ledger.ts).
 */
import { readdirSync, rmSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoots } from '../files/paths.js';
import type { Logger } from 'pino';
import type { BodyOf, Capability, Message, TaskResultBody } from '@tether/protocol';
import type { Agent } from '../agent.js';
import { TaskLedger, type LedgerOptions } from './ledger.js';
import type { RunHandle, RunOutcome } from './runner.js';
import { reattachTask, runTask, taskFileName, type Placement } from './detached.js';
import { scopeSupport, scopesFor, scopeUnitName } from './scope.js';

export interface TaskManagerOptions extends LedgerOptions {
  capabilities: readonly Capability[];
  /** the `files` roots: `deleteAfter` may only remove a file inside them */
  fileRoots?: readonly string[];
  /** tasks running at once on this host (default 256) */
  maxRunning?: number;
  /** live output: flush after this many ms or bytes */
  outputFlushMs?: number;
  outputFlushBytes?: number;
  /** runs a bundle task (kept separate so the exec path stays small); absent: bundles are refused */
  runBundle?: (taskId: string, spec: BundleTask, onOutput: (s: 'stdout' | 'stderr', t: string) => void) => RunHandle;
  /** runs an upgrade of the agent itself (update.ts); absent: auto_update is off and upgrades are refused */
  runUpgrade?: (spec: NonNullable<BodyOf<'task.start'>['upgrade']>, onOutput: (s: 'stdout' | 'stderr', t: string) => void) => RunHandle;
  /**
   * Where commands run: `scope` (a transient systemd scope each, output in files: they outlive the
   * agent), `files` (files and the waiter without a scope: for tests where there is no systemd),
   * `pipes` (the agent's children). Default: `scope` where task_scopes and the host allow it, else `pipes`.
   */
  placement?: 'scope' | 'files' | 'pipes';
}

/** A bundle task as the manager hands it on: its exec may carry a placement (tasks/detached.ts). */
export type BundleTask = Omit<NonNullable<BodyOf<'task.start'>['bundle']>, 'exec'> & { exec: NonNullable<BodyOf<'task.start'>['bundle']>['exec'] & { placement?: Placement } };

interface Running {
  handle: RunHandle;
  startedAt: number;
  seq: number;
  buf: { stdout: string; stderr: string };
  flushTimer: NodeJS.Timeout | undefined;
  stream: boolean;
  /** the task's directory when it runs detached (removed once its result is in the outbox) */
  dir?: string;
}

export class TaskManager {
  readonly ledger: TaskLedger;
  private readonly running = new Map<string, Running>();
  /** ids whose start waits on an asynchronous check (a second task.start for them is ignored) */
  private readonly starting = new Set<string>();
  private flushing = false;
  private readonly tasksDir: string;
  private readonly placementMode: 'scope' | 'files' | 'pipes';

  constructor(
    private readonly agent: Agent,
    private readonly log: Logger,
    private readonly o: TaskManagerOptions,
  ) {
    this.ledger = new TaskLedger(agent.cfg.stateDir, o);
    this.tasksDir = join(agent.cfg.stateDir, 'tasks');
    this.placementMode = o.placement ?? (scopesFor(agent.cfg.taskScopes) ? 'scope' : 'pipes');
    // Tasks that were running when the agent last stopped: followed again where they left a trace
    // (detached tasks: they outlive the agent), else their end is unknown. Never re-run.
    for (const id of this.ledger.interrupted()) {
      if (this.reattach(id)) continue;
      const now = Date.now();
      this.ledger.putResult(blankResult(id, 'lost', now, 'the agent stopped while this task ran; whether the command finished is unknown'));
      this.log.warn({ taskId: id }, 'task interrupted by an agent restart; reporting it lost');
    }
    this.sweepTaskDirs();
    agent.on('connected', () => this.onConnected());
    agent.on('message', (msg) => this.onMessage(msg));
  }

  get runningCount(): number {
    return this.running.size;
  }

  private onConnected(): void {
    // First what we have, so that the hub re-sends only what we have not seen; then the results.
    this.agent.send('task.sync', { running: [...this.running.keys()], done: this.ledger.pending() });
    void this.flushOutbox();
  }

  /** Sends every result in the outbox, pacing on the socket's buffer. */
  private async flushOutbox(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (const id of this.ledger.pending()) {
        const r = this.ledger.readResult(id);
        if (!r) continue;
        if (this.agent.send('task.result', r) === undefined) return;
        while (this.agent.bufferedAmount > 4 * 1024 * 1024) await new Promise((res) => setTimeout(res, 20));
      }
    } finally {
      this.flushing = false;
    }
  }

  private onMessage(msg: Message): void {
    switch (msg.type) {
      case 'task.start':
        return this.start(msg.body as BodyOf<'task.start'>, msg.id);
      case 'task.kill': {
        const b = msg.body as BodyOf<'task.kill'>;
        const r = this.running.get(b.taskId);
        if (!r) {
          this.agent.send('error', { code: 'not_running', message: `task ${b.taskId} is not running here` }, msg.id);
          return;
        }
        const ok = r.handle.kill(b.signal as NodeJS.Signals);
        this.log.info({ taskId: b.taskId, signal: b.signal, ok }, 'kill requested by hub');
        return;
      }
      case 'task.ack':
        this.ledger.acked((msg.body as BodyOf<'task.ack'>).taskId);
        return;
      case 'task.resync':
        return this.onConnected();
    }
  }

  private start(body: BodyOf<'task.start'>, msgId: string): void {
    const id = body.taskId;
    // Idempotency: an id is run once, whatever the hub sends.
    if (this.starting.has(id)) return; // its checks are still under way
    const known = this.ledger.state(id);
    if (known === 'running') {
      const r = this.running.get(id);
      if (r) this.agent.send('task.accepted', { taskId: id, ...(r.handle.pid ? { pid: r.handle.pid } : {}), startedAt: r.startedAt });
      return;
    }
    if (known === 'done') {
      const r = this.ledger.readResult(id);
      if (r) this.agent.send('task.result', r);
      return;
    }
    if (known === 'acked') {
      this.agent.send('error', { code: 'duplicate_task', message: `task ${id} already ran here and its result was acknowledged` }, msgId);
      return;
    }
    const now = Date.now();
    if ([body.exec, body.bundle, body.upgrade].filter(Boolean).length !== 1) return this.finish(id, blankResult(id, 'failed', now, 'a task carries exactly one of exec, bundle or upgrade'));
    // An upgrade is not a command: its own switch in the local config decides.
    if (body.upgrade) {
      if (!this.o.runUpgrade) return this.finish(id, blankResult(id, 'refused', now, 'this agent does not accept upgrades from the hub (auto_update = false in its local config)'));
      return this.launch(body, undefined);
    }
    // The capability lock: the local configuration decides, never the hub.
    if (!this.o.capabilities.includes('exec')) {
      this.log.warn({ taskId: id }, 'refused a task: exec is not among this agent’s capabilities');
      return this.finish(id, blankResult(id, 'refused', now, `this agent does not allow exec (capabilities = [${this.o.capabilities.join(', ')}] in its local config)`));
    }
    if (body.bundle && !this.o.runBundle) return this.finish(id, blankResult(id, 'failed', now, 'this agent cannot run script bundles'));
    if (this.running.size >= (this.o.maxRunning ?? 256)) return this.finish(id, blankResult(id, 'failed', now, `agent busy: ${this.running.size} tasks already running`));
    const deleteAfter = body.exec?.deleteAfter;
    if (!deleteAfter) return this.launch(body, undefined);
    this.starting.add(id);
    void this.deletable(deleteAfter).then((removable) => {
      this.starting.delete(id);
      if (removable instanceof Error) this.finish(id, blankResult(id, 'refused', now, removable.message));
      else this.launch(body, removable);
    });
  }

  /** Where a new task runs: undefined for the agent's child; else its directory, and its scope. */
  private placement(id: string): Placement | undefined {
    if (this.placementMode === 'pipes') return undefined;
    const dir = join(this.tasksDir, taskFileName(id));
    const scope = this.placementMode === 'scope' ? scopeSupport() : undefined;
    return scope ? { dir, scope: { ...scope, unit: scopeUnitName('task', id), description: `Tether task ${id}` } } : { dir };
  }

  private launch(body: BodyOf<'task.start'>, deleteAfter: string | undefined): void {
    const id = body.taskId;
    const now = Date.now();
    this.ledger.markStarted(id);
    const stream = body.exec ? body.exec.stream === true : true;
    // An upgrade runs in the agent itself: it has no command to place.
    const placement = body.upgrade ? undefined : this.placement(id);
    const entry: Running = { handle: undefined as unknown as RunHandle, startedAt: now, seq: 0, buf: { stdout: '', stderr: '' }, flushTimer: undefined, stream, ...(placement ? { dir: placement.dir } : {}) };
    const onOutput = (s: 'stdout' | 'stderr', text: string) => this.output(id, entry, s, text);
    const env = (e: Record<string, string> | undefined) => ({ TETHER_TASK_ID: id, ...e });
    const where = placement ? { placement } : {};
    entry.handle = body.exec
      ? runTask({ ...body.exec, env: env(body.exec.env), ...where }, stream ? onOutput : undefined)
      : body.bundle
        ? this.o.runBundle!(id, { ...body.bundle, exec: { ...body.bundle.exec, env: env(body.bundle.exec.env), ...where } }, onOutput)
        : this.o.runUpgrade!(body.upgrade!, onOutput);
    this.running.set(id, entry);
    this.agent.send('task.accepted', { taskId: id, ...(entry.handle.pid ? { pid: entry.handle.pid } : {}), startedAt: now });
    this.log.info({ taskId: id, pid: entry.handle.pid, ...(placement?.scope ? { scope: `${placement.scope.unit}.scope` } : {}) }, 'task started');
    this.track(id, entry, deleteAfter ? body.exec!.deleteAfter! : undefined);
  }

  /** Follows again a task an earlier agent started detached; false when it left nothing to follow. */
  private reattach(id: string): boolean {
    const dir = join(this.tasksDir, taskFileName(id));
    const entry: Running = { handle: undefined as unknown as RunHandle, startedAt: 0, seq: 0, buf: { stdout: '', stderr: '' }, flushTimer: undefined, stream: true, dir };
    const r = reattachTask(dir, (s, text) => this.output(id, entry, s, text), { ...(scopeSupport() ? { scope: scopeSupport()! } : {}) });
    if (!r) return false;
    Object.assign(entry, { handle: r.handle, startedAt: r.startedAt, seq: r.handle.seqBase ?? 0 });
    this.running.set(id, entry);
    this.log.info({ taskId: id, pid: r.handle.pid }, 'task started by an earlier agent re-attached');
    this.track(id, entry, r.deleteAfter);
    return true;
  }

  /** Task directories no running task owns (its result is in the outbox, or it is lost): removed. */
  private sweepTaskDirs(): void {
    let names: string[];
    try {
      names = readdirSync(this.tasksDir);
    } catch {
      return;
    }
    const owned = new Set([...this.running.values()].map((r) => r.dir));
    for (const name of names) if (!owned.has(join(this.tasksDir, name))) rmSync(join(this.tasksDir, name), { recursive: true, force: true });
  }

  /** Waits for the end; `deleteAfter` as the hub named it (already checked once). */
  private track(id: string, entry: Running, deleteAfter: string | undefined): void {
    void entry.handle.done.then(async (outcome) => {
      if (deleteAfter) {
        // Checked again: the command may have replaced the file with a link meanwhile.
        const again = await this.deletable(deleteAfter);
        try {
          if (again instanceof Error) throw again;
          rmSync(again, { force: true });
        } catch (err) {
          outcome.error = `${outcome.error ? outcome.error + '; ' : ''}could not delete ${deleteAfter}: ${(err as Error).message}`;
        }
      }
      this.flushOutput(id, entry);
      clearTimeout(entry.flushTimer);
      this.running.delete(id);
      this.finish(id, toResult(id, outcome));
      // The outbox has the result now: the files it came from can go.
      if (entry.dir) rmSync(entry.dir, { recursive: true, force: true });
    });
  }

  /**
   * deleteAfter: only with the files capability, only a regular file inside a file root, resolved
   * (links followed) by the same resolver as every file operation.
   */
  private async deletable(path: string): Promise<string | Error> {
    if (!this.o.capabilities.includes('files')) return new Error('deleteAfter needs the files capability, which this agent does not allow');
    try {
      const { path: real } = await resolveInRoots(path, this.o.fileRoots ?? []);
      const st = await lstat(real).catch(() => undefined);
      if (st && !st.isFile()) return new Error(`deleteAfter: ${path} is not a regular file`);
      return real;
    } catch (err) {
      return new Error(`deleteAfter: ${(err as Error).message}`);
    }
  }

  private output(id: string, r: Running, s: 'stdout' | 'stderr', text: string): void {
    r.buf[s] += text;
    if (r.buf.stdout.length + r.buf.stderr.length >= (this.o.outputFlushBytes ?? 32 * 1024)) return this.flushOutput(id, r);
    r.flushTimer ??= setTimeout(() => this.flushOutput(id, r), this.o.outputFlushMs ?? 50);
  }

  private flushOutput(id: string, r: Running): void {
    clearTimeout(r.flushTimer);
    r.flushTimer = undefined;
    for (const s of ['stdout', 'stderr'] as const) {
      let text = r.buf[s];
      r.buf[s] = '';
      // Live output is best effort: with the link down or the socket backed up it is skipped (the result keeps it).
      while (text.length > 0) {
        const part = text.slice(0, 128 * 1024);
        text = text.slice(part.length);
        if (this.agent.bufferedAmount < 8 * 1024 * 1024) this.agent.send('task.output', { taskId: id, seq: r.seq, stream: s, data: part });
        r.seq++;
      }
    }
  }

  private finish(id: string, result: TaskResultBody): void {
    this.ledger.putResult(result);
    this.log.info({ taskId: id, status: result.status, exitCode: result.exitCode }, 'task ended');
    // Sent now even while the outbox is being flushed (a duplicate is acknowledged and ignored).
    this.agent.send('task.result', result);
  }

  /**
   * Stops accepting output; running commands keep running. The next agent re-attaches to those that
   * run detached (their scope and files outlive it) and reports the others lost.
   */
  close(): void {
    for (const r of this.running.values()) r.handle.release?.();
    this.ledger.close();
  }
}

function blankResult(taskId: string, status: TaskResultBody['status'], now: number, error: string): TaskResultBody {
  return { taskId, status, exitCode: null, signal: null, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, truncated: false, startedAt: now, endedAt: now, error };
}

function toResult(taskId: string, o: RunOutcome): TaskResultBody {
  return { taskId, ...o };
}
