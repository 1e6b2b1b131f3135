/**
 * The job scheduler. A job is a command on a set of hosts with a strategy (see strategy.ts); each
 * host gets a task. Tasks are sent to agents, results come back, and the scheduler decides what
 * starts next. Active jobs live in memory and in the database (every change is written before it
 * is acknowledged to an agent or announced), so a restarted hub resumes them.
 *
 * Exactly once, across disconnects and hub restarts:
 * - after connecting, an agent sends `task.sync` (what it runs, what results it holds); until then
 *   nothing is sent to it. Only tasks it has not seen are (re-)sent;
 * - results are committed, then acknowledged (`task.ack`); a duplicate result is acknowledged and
 *   otherwise ignored;
 * - the agent itself refuses to run an id twice (its on-disk ledger), a second guard.
 */
import { systemClock, type Clock } from '../../clock.js';
import type { Scheduler } from '../../scheduler.js';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BodyOf, BundleSpec, ExecSpec, Message } from '@tether/protocol';
import type { Kysely } from 'kysely';
import type { AgentPort } from '../agents/link.js';
import type { ClusterBus } from '../../cluster/bus.js';
import type { Leases } from '../../cluster/leases.js';
import type { HostStore } from '../hosts/store.js';
import { JobStore, clean, type HubTaskStatus, type Job, type Task } from './store.js';
import { plan, type Plan, type Strategy } from './strategy.js';

export const newJobId = () => 'j_' + randomBytes(12).toString('base64url');
export const newTaskId = () => 't_' + randomBytes(12).toString('base64url');

/** Live events for one job's subscribers. */
export type JobEvent =
  | { type: 'task'; task: Task }
  | { type: 'output'; taskId: string; hostId: string; hostname: string; stream: 'stdout' | 'stderr'; data: string; seq: number }
  | { type: 'job'; job: Job };

/** A bundle job's spec: which archive, with what arguments and exec options. */
/** `tether agent upgrade`: the artifact each architecture gets (the hub's artifact store). */
export interface UpgradeJobSpec {
  version: string;
  artifacts: Partial<Record<'x64' | 'arm64', { file: string; sha256: string; size: number }>>;
  /** each host's architecture as its facts said when the job was made */
  hostArch: Record<string, string>;
}

/** How long an upgraded agent has to come back with its new version: its 60 s trial, a restart and a reconnect. */
export const UPGRADE_VERIFY_MS = 150_000;

export interface BundleJobSpec {
  bundleId: string;
  name: string;
  sha256: string;
  size: number;
  args?: string[];
  exec: BundleSpec['exec'];
}

interface Run {
  job: Job;
  spec: ExecSpec | BundleJobSpec | UpgradeJobSpec;
  strategy: Strategy;
  plan: Plan;
  tasks: Task[];
  health: Task[];
  batch: number;
  stopping: boolean;
  cancelled: boolean;
  finishing: boolean;
  pumping: boolean;
  repump: boolean;
}

export type { AgentPort };

/**
 * What the scheduler needs of agents: `AgentLink` on a hub alone; in a cluster, the cluster's
 * agents, with the task messages of agents held by other hubs forwarded to this one
 * (cluster/jobs.ts).
 */
export interface JobAgents {
  get(agentId: string): AgentPort | undefined;
  isOnline(agentId: string): boolean;
  on(event: 'online', fn: (agentId: string) => void): unknown;
  on(event: 'offline', fn: (agentId: string, reason: string) => void): unknown;
  on(event: 'message', fn: (conn: AgentPort, msg: Message) => void): unknown;
}

/** A cluster's scheduler: the bus, the leases, and the fencing check for its writes. */
export interface JobCluster {
  bus: ClusterBus;
  leases: Leases;
  /** throws unless this hub still holds the jobs lease at `epoch` (run inside the write's transaction) */
  fence(tx: Kysely<any>, epoch: number): Promise<void>;
  /** asks every agent of the cluster to send task.sync and its unacknowledged results again */
  resyncAll(): void;
}

type Control = { op: 'kill'; taskId: string; signal: BodyOf<'task.kill'>['signal'] } | { op: 'cancel'; jobId: string };

export interface JobServiceOptions {
  /** a task sent to a host that then stays disconnected this long is marked lost (default 10 min) */
  lostAfterMs?: number;
  /** live output kept per running task for late subscribers (default 256 KiB) */
  outputBufferBytes?: number;
  /** hands a bundle to an agent: returns the transfer id the agent fetches it with */
  offerBundle?: (agentId: string, spec: BundleJobSpec) => string;
  /** offers an artifact file to an agent; returns the transfer id */
  offerArtifact?: (agentId: string, file: string, size: number) => string;
  /** after a hub start, hosts are not called offline for this long (default 30 s): agents are reconnecting */
  reconnectGraceMs?: number;
  /** the hub's clock: task-lost timers and job times follow it */
  clock?: Clock;
}

/** How many refused hosts a refusal names; the count is always whole. */
export const REFUSED_LISTED = 50;

/**
 * A job refused at creation because hosts whose agents do not allow exec would stop it before it
 * did anything (a rolling or sequence job stops at its first failure): names them, so the
 * operator can leave them out (`skipRefused`) or change their agents.
 */
export class JobRefusedError extends Error {
  constructor(
    readonly hosts: { id: string; hostname: string }[],
    readonly count: number,
    message: string,
  ) {
    super(message);
  }
}

/** A task for a host left out of its job at creation (skipRefused): not run, not a failure. */
export const leftOut = (t: Pick<Task, 'state' | 'status'>) => t.state === 'skipped' && t.status === 'refused';

export interface CreateJob {
  /** leave out hosts whose agents do not allow exec instead of refusing the job */
  skipRefused?: boolean;
  name?: string;
  kind?: 'exec' | 'bundle' | 'upgrade';
  spec: ExecSpec | BundleJobSpec | UpgradeJobSpec;
  /** why a host would refuse this job (default: its agent does not allow exec); undefined: it would not */
  refusal?: (h: { id: string; hostname: string; capabilities: string[] }) => string | undefined;
  strategy: Strategy;
  target: unknown;
  hosts: { id: string; hostname: string; capabilities: string[] }[];
  createdBy: string;
  callbackUrl?: string;
}

const FINAL = new Set(['done', 'skipped', 'cancelled']);
const isFinal = (t: Task) => FINAL.has(t.state);
const failed = (t: Task) => t.state === 'done' && !(t.status === 'exited' && t.exitCode === 0);

export class JobService extends EventEmitter {
  private readonly runs = new Map<string, Run>();
  /** non-final tasks by id */
  private readonly active = new Map<string, { run: Run; task: Task }>();
  /** hosts that have sent task.sync on their current connection */
  private readonly synced = new Set<string>();
  private readonly offlineSince = new Map<string, number>();
  private readonly outputs = new Map<string, { chunks: { stream: 'stdout' | 'stderr'; data: string; seq: number }[]; bytes: number }>();
  private readonly subscribers = new Map<string, Set<(e: JobEvent) => void>>();
  private readonly waiters = new Map<string, Set<(ended?: boolean) => void>>();
  /** upgrade tasks whose agent said it installed the new version: done when it comes back as that version */
  private readonly verifying = new Map<string, { run: Run; task: Task; version: string; until: number }>();
  private stopping = false;
  private dirtyTasks = new Set<Task>();
  private dirtyJobs = new Set<Job>();
  private afterCommit: (() => void)[] = [];
  private flushing: Promise<void> | undefined;
  private flushQueued = false;
  private readonly startedAt: number;
  readonly stats = { sent: 0, resent: 0, results: 0, duplicateResults: 0, lost: 0 };

  constructor(
    readonly store: JobStore,
    private readonly link: JobAgents,
    private readonly hosts: HostStore,
    private readonly log: Logger,
    private readonly o: JobServiceOptions = {},
  ) {
    super();
    this.startedAt = this.now();
  }

  private now(): number {
    return (this.o.clock ?? systemClock).now();
  }

  /** Loads the jobs a previous run of the hub left running and starts listening to agents. */
  async start(scheduler: Scheduler): Promise<void> {
    if (this.leading) await this.resume();
    this.link.on('online', (id) => {
      this.synced.delete(id);
      this.offlineSince.delete(id);
      this.verifyUpgrades(id);
    });
    this.link.on('offline', (id) => {
      this.synced.delete(id);
      this.offlineSince.set(id, this.now());
    });
    this.link.on('message', (conn, msg) => this.leading && this.onMessage(conn, msg));
    scheduler.every('jobs.sweep', 1000, () => this.sweep(), { lease: 'jobs' });
  }

  /** Takes up the jobs the database says are running (a hub's start, or a cluster's scheduler moving here). */
  private async resume(): Promise<void> {
    for (const job of await this.store.runningJobs()) {
      if (this.runs.has(job.id)) continue;
      const tasks = await this.store.tasksOf(job.id);
      const run = this.makeRun(job, tasks.filter((t) => t.phase === 'main'), tasks.filter((t) => t.phase === 'health'));
      if (job.kind === 'upgrade') {
        // Installed before the previous hub went away (the agent's "installed …" result is recorded,
        // the task still running): it ends by the version the agent comes back as, as it would have.
        const version = (run.spec as UpgradeJobSpec).version;
        for (const t of run.tasks) if (t.state === 'running' && /^installed /.test(t.stdout ?? '')) this.verifying.set(t.id, { run, task: t, version, until: this.now() + UPGRADE_VERIFY_MS });
      }
      this.log.info({ jobId: job.id, tasks: tasks.length }, 'resuming job');
      void this.pump(run);
    }
  }

  // ---------------------------------------------------------------- one scheduler in a cluster

  /** false on a hub of a cluster that does not hold the jobs lease */
  private leading = true;
  private cluster: JobCluster | undefined;
  private epoch = 0;

  /**
   * In a cluster the scheduler runs on the one hub holding the jobs lease. Any hub creates jobs
   * (written to the database, then handed to the scheduler over the bus), answers reads from the
   * database, relays the scheduler's job events to its own subscribers, and forwards kill and
   * cancel. The scheduler's writes are fenced by its lease's epoch. On gaining the lease a hub
   * takes up every running job and asks every agent to resync (`task.resync`): what the agents
   * run and the results they still hold come to it, so a result the old scheduler did not commit
   * is delivered to the new one, and nothing already started is started again.
   */
  clustered(c: JobCluster): void {
    this.cluster = c;
    this.leading = c.leases.holds('jobs');
    if (this.leading) this.epoch = c.leases.epoch('jobs') ?? 0;
    const { bus } = c;
    c.leases.on('gained', (name, epoch) => {
      if (name !== 'jobs') return;
      this.epoch = epoch;
      this.synced.clear();
      void this.resume()
        .then(async () => {
          this.leading = true;
          // A job handed over while the first pass ran (its `jobs.new` came before this hub led) is
          // in the database: a second pass takes it (known runs are skipped).
          await this.resume();
          c.resyncAll();
          this.log.info({ jobs: this.runs.size }, 'job scheduler active on this hub');
        })
        .catch((err: Error) => this.log.error({ err: err.message }, 'job scheduler could not take up the running jobs'));
    });
    c.leases.on('lost', (name) => {
      if (name !== 'jobs') return;
      this.leading = false;
      this.runs.clear();
      this.active.clear();
      this.verifying.clear();
      this.synced.clear();
      this.outputs.clear();
      // What it had not written is not written now (the fence would refuse it): agents send again.
      this.dirtyTasks = new Set();
      this.dirtyJobs = new Set();
      this.afterCommit = [];
    });
    bus.subscribe(bus.subject('jobs', 'new'), (d) => {
      if (this.leading) void this.adopt(String((d as { jobId?: unknown }).jobId)).catch((err: Error) => this.log.error({ err: err.message }, 'could not take up a job made on another hub'));
    });
    bus.subscribe(bus.subject('jobs', 'ev'), (d) => {
      const m = d as { jobId: string; e: JobEvent };
      if (!this.leading && m && typeof m.jobId === 'string') this.deliver(m.jobId, m.e);
    });
    bus.subscribe(bus.subject('jobs', 'ctl'), (d, msg) => {
      if (!this.leading) return;
      const r = d as Control;
      bus.reply(msg, r.op === 'kill' ? this.killHere(String(r.taskId), r.signal) : this.cancelHere(String(r.jobId)));
    });
  }

  /** A job another hub made: the scheduler takes it from the database. */
  private async adopt(jobId: string): Promise<void> {
    if (this.runs.has(jobId)) return;
    const job = await this.store.getJob(jobId);
    if (!job || job.state !== 'running' || this.runs.has(jobId)) return;
    const tasks = await this.store.tasksOf(jobId);
    void this.pump(this.makeRun(job, tasks.filter((t) => t.phase === 'main'), tasks.filter((t) => t.phase === 'health')));
  }

  /** A job event from the scheduler on another hub, for this hub's subscribers and waiters. */
  private deliver(jobId: string, e: JobEvent): void {
    for (const s of this.subscribers.get(jobId) ?? []) s(e);
    if (e.type === 'job' && e.job.state !== 'running') {
      for (const w of this.waiters.get(jobId) ?? []) w();
      this.waiters.delete(jobId);
    }
  }

  /** Writes what is waiting (call after the scheduler has stopped). */
  async stop(): Promise<void> {
    // Callers waiting for a job to end (synchronous exec) get its state as it is now.
    this.stopping = true;
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w(false);
    this.waiters.clear();
    await this.flush();
  }

  private makeRun(job: Job, tasks: Task[], health: Task[] = []): Run {
    const strategy = job.strategy as Strategy;
    const run: Run = { job, spec: job.spec as Run['spec'], strategy, plan: plan(strategy, tasks.filter((t) => !leftOut(t)).length), tasks, health, batch: 0, stopping: false, cancelled: false, finishing: false, pumping: false, repump: false };
    this.runs.set(job.id, run);
    for (const t of [...tasks, ...health]) if (!isFinal(t)) this.active.set(t.id, { run, task: t });
    return run;
  }

  async create(c: CreateJob): Promise<{ job: Job; tasks: Task[] }> {
    const now = this.now();
    // The hub knows from the handshake what each agent allows; the agent would refuse anyway.
    const refusal = c.refusal ?? ((h: { capabilities: string[] }) => (h.capabilities.includes('exec') ? undefined : 'this host’s agent does not allow exec (its local capabilities)'));
    const why = new Map(c.hosts.map((h) => [h.id, refusal(h)]));
    const refused = c.hosts.filter((h) => why.get(h.id) !== undefined);
    const what = c.kind === 'upgrade' ? 'accepts upgrades (auto_update in its local config) and has a build for its architecture' : 'allows exec';
    const runnable = c.skipRefused ? c.hosts.length - refused.length : c.hosts.length;
    const p = plan(c.strategy, runnable);
    if (c.skipRefused && runnable === 0) throw new JobRefusedError(refused.slice(0, REFUSED_LISTED).map((h) => ({ id: h.id, hostname: h.hostname })), refused.length, `none of the ${c.hosts.length} hosts ${what}: nothing would run`);
    if (refused.length && !c.skipRefused && refused.length > p.maxFailures) {
      const named = refused.slice(0, REFUSED_LISTED).map((h) => ({ id: h.id, hostname: h.hostname }));
      const more = refused.length > named.length ? ` and ${refused.length - named.length} more` : '';
      throw new JobRefusedError(
        named,
        refused.length,
        `${refused.length} of ${c.hosts.length} hosts would refuse this job (${c.kind === 'upgrade' ? why.get(refused[0]!.id) : 'their agents do not allow exec'}), and a ${c.strategy.kind} job stops at ${p.maxFailures === 0 ? 'the first failure' : `more than ${p.maxFailures} failures`}: ` +
          `${named.map((h) => h.hostname).join(', ')}${more}. ` +
          (c.kind === 'upgrade' ? 'Leave them out with skipRefused (--skip-refused), or set auto_update = true in their agents’ configuration' : "Leave them out with skipRefused (tether exec --skip-refused), or allow exec in their agents' configuration"),
      );
    }
    const job: Job = {
      id: newJobId(),
      name: c.name ?? ('command' in c.spec ? c.spec.command.join(' ') : 'artifacts' in c.spec ? `upgrade agents to ${c.spec.version}` : `bundle ${c.spec.name}`).slice(0, 200),
      kind: c.kind ?? 'exec',
      spec: c.spec,
      target: c.target,
      strategy: c.strategy,
      state: 'running',
      createdBy: c.createdBy,
      createdAt: now,
      endedAt: null,
      hostCount: c.hosts.length,
      callbackUrl: c.callbackUrl ?? null,
      message: null,
    };
    // Batches are made of the hosts that will run: a left-out host takes no place in one.
    let runIdx = 0;
    const tasks: Task[] = c.hosts.map((h, idx) => {
      const reason = why.get(h.id);
      const t = blankTask(job.id, h.id, h.hostname, idx, c.skipRefused && reason !== undefined ? 0 : p.batchOf(runIdx++), 'main', now);
      if (reason === undefined) return t;
      if (c.skipRefused) Object.assign(t, { state: 'skipped', status: 'refused', error: `left out: ${reason}`, endedAt: now });
      else Object.assign(t, { state: 'done', status: 'refused', error: reason, endedAt: now });
      return t;
    });
    await this.store.createJob(job, tasks);
    if (!this.leading && this.cluster) {
      this.log.info({ jobId: job.id, hosts: tasks.length, strategy: c.strategy.kind, by: c.createdBy }, 'job created; handed to the cluster’s scheduler');
      this.cluster.bus.publish(this.cluster.bus.subject('jobs', 'new'), { jobId: job.id });
      return { job, tasks };
    }
    const run = this.makeRun(job, tasks);
    this.log.info({ jobId: job.id, hosts: tasks.length, strategy: c.strategy.kind, by: c.createdBy }, 'job created');
    void this.pump(run);
    return { job, tasks };
  }

  // ---------------------------------------------------------------- scheduling

  private failures(run: Run): number {
    const hostsFailed = new Set<string>();
    for (const t of run.tasks) if (failed(t)) hostsFailed.add(t.hostId);
    for (const t of run.health) if (failed(t)) hostsFailed.add(t.hostId);
    return hostsFailed.size;
  }

  /** Starts what may start now; ends the job when nothing is left. One pass at a time per job. */
  private async pump(run: Run): Promise<void> {
    if (run.pumping) {
      run.repump = true;
      return;
    }
    run.pumping = true;
    try {
      do {
        run.repump = false;
        await this.pumpOnce(run);
      } while (run.repump);
    } catch (err) {
      this.log.error({ jobId: run.job.id, err: (err as Error).message }, 'job scheduling failed; retrying');
      setTimeout(() => void this.pump(run), 1000).unref();
    } finally {
      run.pumping = false;
    }
  }

  private async pumpOnce(run: Run): Promise<void> {
    if (run.finishing) return;
    const now = this.now();
    if (!run.stopping && this.failures(run) > run.plan.maxFailures) {
      run.stopping = true;
      run.job.message = `stopped: ${this.failures(run)} host(s) failed, more than the ${run.plan.maxFailures} allowed`;
      this.dirtyJobs.add(run.job);
    }
    if (run.stopping || run.cancelled) {
      for (const t of [...run.tasks, ...run.health]) if (t.state === 'pending') this.end(t, run.cancelled ? 'cancelled' : 'skipped', run.cancelled ? 'cancelled' : 'skipped', run.cancelled ? 'job cancelled' : 'job stopped before reaching this host');
    } else {
      while (run.batch < run.plan.batches) {
        const batch = run.tasks.filter((t) => t.batch === run.batch);
        const checks = run.health.filter((t) => t.batch === run.batch);
        if (!batch.every(isFinal)) {
          this.dispatch(run, batch, now);
          break;
        }
        if (run.strategy.health && checks.length === 0 && batch.length > 0) {
          // Health check on the batch's hosts that did not fail.
          const fresh = batch.filter((t) => !failed(t) && t.state === 'done').map((t) => blankTask(run.job.id, t.hostId, t.hostname, t.idx, t.batch, 'health', now));
          if (fresh.length > 0) {
            await this.store.addTasks(fresh);
            run.health.push(...fresh);
            for (const t of fresh) this.active.set(t.id, { run, task: t });
            this.dispatch(run, fresh, now);
            break;
          }
        }
        if (!checks.every(isFinal)) {
          this.dispatch(run, checks, now);
          break;
        }
        if (this.failures(run) > run.plan.maxFailures) {
          run.repump = true;
          return;
        }
        run.batch++;
      }
    }
    const all = [...run.tasks, ...run.health];
    if (all.every(isFinal) && (run.batch >= run.plan.batches || run.stopping || run.cancelled)) await this.finish(run);
    this.scheduleFlush();
  }

  private dispatch(run: Run, tasks: Task[], now: number): void {
    let inflight = tasks.filter((t) => t.state === 'sent' || t.state === 'running').length;
    for (const t of tasks) {
      if (inflight >= run.plan.concurrency) break;
      if (t.state !== 'pending') continue;
      const conn = this.link.get(t.hostId);
      if (!conn || !this.synced.has(t.hostId)) {
        // A hub that just started gives its agents time to reconnect before calling anyone offline.
        const wait = (run.strategy.offlineWaitSec ?? 0) * 1000;
        const grace = now - this.startedAt < (this.o.reconnectGraceMs ?? 30_000);
        if (!conn && !grace && now - run.job.createdAt >= wait) {
          this.end(t, 'offline', 'done', 'the host was not connected');
          run.repump = true; // an end can complete the batch or cross the failure threshold
        }
        else inflight++; // waiting for it holds its place (a sequence keeps its order)
        continue;
      }
      this.send(conn, run, t, now);
      inflight++;
    }
  }

  private send(conn: AgentPort, run: Run, t: Task, now: number): void {
    let body: BodyOf<'task.start'>;
    if (t.phase === 'health') body = { taskId: t.id, exec: run.strategy.health! };
    else if (run.job.kind === 'bundle') {
      const b = run.spec as BundleJobSpec;
      if (!this.o.offerBundle) return this.end(t, 'failed', 'done', 'this hub cannot serve bundles');
      // A fresh transfer for every send: a re-send after a reconnect gets its own.
      const transferId = this.o.offerBundle(t.hostId, b);
      body = { taskId: t.id, bundle: { transferId, sha256: b.sha256, size: b.size, ...(b.args ? { args: b.args } : {}), exec: b.exec } };
    } else if (run.job.kind === 'upgrade') {
      const u = run.spec as UpgradeJobSpec;
      const arch = u.hostArch[t.hostId];
      const a = arch === 'x64' || arch === 'arm64' ? u.artifacts[arch] : undefined;
      if (!a || !this.o.offerArtifact) return this.end(t, 'failed', 'done', `this hub holds no agent ${u.version} for ${arch ?? 'this host’s architecture'}`);
      const transferId = this.o.offerArtifact(t.hostId, a.file, a.size);
      body = { taskId: t.id, upgrade: { transferId, sha256: a.sha256, size: a.size, version: u.version, arch: arch as 'x64' | 'arm64' } };
    } else body = { taskId: t.id, exec: run.spec as ExecSpec };
    if (conn.send('task.start', body) === undefined) return;
    if (t.state === 'pending') {
      t.state = 'sent';
      t.sentAt = now;
      this.stats.sent++;
    } else this.stats.resent++;
    this.dirtyTasks.add(t);
    this.emitTask(run, t);
  }

  private end(t: Task, status: HubTaskStatus, state: Task['state'], error: string | null): void {
    t.state = state;
    t.status = status;
    t.error = error;
    t.endedAt = this.now();
    this.active.delete(t.id);
    this.dirtyTasks.add(t);
    const entry = this.runs.get(t.jobId);
    if (entry) this.emitTask(entry, t);
  }

  private async finish(run: Run): Promise<void> {
    run.finishing = true;
    const job = run.job;
    job.state = run.cancelled ? 'cancelled' : this.failures(run) > 0 || run.tasks.some((t) => !leftOut(t) && (t.status !== 'exited' || t.exitCode !== 0)) ? 'failed' : 'succeeded';
    job.endedAt = this.now();
    this.dirtyJobs.add(job);
    await this.flush();
    this.runs.delete(job.id);
    for (const t of [...run.tasks, ...run.health]) this.outputs.delete(t.id);
    this.log.info({ jobId: job.id, state: job.state }, 'job ended');
    this.publish(job.id, { type: 'job', job });
    for (const w of this.waiters.get(job.id) ?? []) w();
    this.waiters.delete(job.id);
    if (job.callbackUrl) void this.callback(job, [...run.tasks, ...run.health]);
  }

  private async callback(job: Job, tasks: Task[]): Promise<void> {
    const body = JSON.stringify({ job: jobView(job, tasks), tasks: tasks.map((t) => ({ ...taskView(t), stdout: undefined, stderr: undefined })) });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const res = await fetch(job.callbackUrl!, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'tether-hub' }, body, signal: AbortSignal.timeout(10_000), redirect: 'error' });
        if (res.ok) return;
        this.log.warn({ jobId: job.id, status: res.status }, 'job callback answered with an error');
      } catch (err) {
        this.log.warn({ jobId: job.id, err: (err as Error).message }, 'job callback failed');
      }
      await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
    }
  }

  // ---------------------------------------------------------------- agents

  private onMessage(conn: AgentPort, msg: Message): void {
    switch (msg.type) {
      case 'task.sync':
        return this.onSync(conn, msg.body as BodyOf<'task.sync'>);
      case 'task.accepted': {
        const b = msg.body as BodyOf<'task.accepted'>;
        const a = this.active.get(b.taskId);
        if (!a || a.task.hostId !== conn.agentId) return;
        if (a.task.state === 'pending' || a.task.state === 'sent') {
          a.task.state = 'running';
          a.task.startedAt = b.startedAt;
          a.task.pid = b.pid ?? null;
          this.dirtyTasks.add(a.task);
          this.emitTask(a.run, a.task);
          this.scheduleFlush();
        }
        return;
      }
      case 'task.output': {
        const b = msg.body as BodyOf<'task.output'>;
        const a = this.active.get(b.taskId);
        if (!a || a.task.hostId !== conn.agentId) return;
        this.keepOutput(b.taskId, b.stream, b.data, b.seq);
        this.publish(a.task.jobId, { type: 'output', taskId: b.taskId, hostId: a.task.hostId, hostname: a.task.hostname, stream: b.stream, data: b.data, seq: b.seq });
        return;
      }
      case 'task.result':
        return this.onResult(conn, msg.body as BodyOf<'task.result'>);
    }
  }

  private onSync(conn: AgentPort, b: BodyOf<'task.sync'>): void {
    const id = conn.agentId;
    const running = new Set(b.running);
    const done = new Set(b.done);
    const now = this.now();
    const touched = new Set<Run>();
    for (const { run, task } of this.active.values()) {
      if (task.hostId !== id) continue;
      touched.add(run);
      // A task the agent knows may still read `pending` here: a hub that died between sending it
      // and writing that down. The agent's word wins, so it is never sent twice.
      if (running.has(task.id)) {
        if (task.state === 'sent' || task.state === 'pending') {
          task.state = 'running';
          task.sentAt ??= now;
          this.dirtyTasks.add(task);
        }
      } else if (done.has(task.id)) {
        if (task.state === 'pending') {
          task.state = 'sent';
          task.sentAt ??= now;
          this.dirtyTasks.add(task);
        }
        // its result follows
      } else if (task.state === 'pending') {
        // not started anywhere: the scheduler sends it when its turn comes
      } else if (task.state === 'sent') {
        // The agent never saw it (lost in a dropped connection): safe to send again.
        this.send(conn, run, task, now);
      } else {
        this.end(task, 'lost', 'done', 'the agent no longer knows this task (its state was lost)');
        this.stats.lost++;
      }
    }
    this.synced.add(id);
    for (const run of this.runs.values()) if (touched.has(run) || run.tasks.some((t) => t.hostId === id && t.state === 'pending')) void this.pump(run);
    this.scheduleFlush();
  }

  private onResult(conn: AgentPort, r: BodyOf<'task.result'>): void {
    const a = this.active.get(r.taskId);
    const ack = () => conn.send('task.ack', { taskId: r.taskId });
    if (!a && this.cluster) {
      // In a cluster a result may reach a scheduler that has not taken up its job yet (a hand-over,
      // a job just made on another hub): acknowledged only if the database has it final or has no
      // such task; otherwise the agent keeps it and sends it again on the next resync.
      void this.store.getTask(r.taskId).then(
        (t) => {
          if (t && !isFinal(t)) return void this.log.info({ taskId: r.taskId }, 'result for a task not taken up yet; not acknowledged (the agent keeps it)');
          this.stats.duplicateResults++;
          this.afterCommit.push(ack);
          this.scheduleFlush();
        },
        () => {},
      );
      return;
    }
    if (!a) {
      // Already recorded (a result re-sent after a lost ack) or not ours to keep: let the agent forget it.
      this.stats.duplicateResults++;
      this.afterCommit.push(ack);
      this.scheduleFlush();
      return;
    }
    if (a.task.hostId !== conn.agentId) {
      this.log.warn({ agentId: conn.agentId, taskId: r.taskId }, 'agent sent a result for another host’s task; ignored');
      return;
    }
    const t = a.task;
    if (a.run.job.kind === 'upgrade' && r.status === 'exited' && r.exitCode === 0 && !/^already /.test(r.stdout)) {
      // Installed and restarting: done when the agent comes back as the new version, failed if as another.
      const version = (a.run.spec as UpgradeJobSpec).version;
      Object.assign(t, { stdout: clean(r.stdout), stdoutBytes: r.stdoutBytes, startedAt: t.startedAt ?? r.startedAt, state: 'running' });
      this.verifying.set(t.id, { run: a.run, task: t, version, until: this.now() + UPGRADE_VERIFY_MS });
      this.dirtyTasks.add(t);
      this.afterCommit.push(ack, () => this.emitTask(a.run, t));
      this.scheduleFlush();
      return;
    }
    Object.assign(t, {
      state: 'done',
      status: r.status,
      exitCode: r.exitCode,
      signal: r.signal,
      error: r.error ?? null,
      stdout: clean(r.stdout),
      stderr: clean(r.stderr),
      stdoutBytes: r.stdoutBytes,
      stderrBytes: r.stderrBytes,
      truncated: r.truncated,
      startedAt: t.startedAt ?? r.startedAt,
      endedAt: r.endedAt,
    });
    this.active.delete(t.id);
    this.stats.results++;
    this.dirtyTasks.add(t);
    this.afterCommit.push(ack, () => {
      this.emitTask(a.run, t);
      this.outputs.delete(t.id);
      void this.pump(a.run);
    });
    this.scheduleFlush();
  }

  /** An agent came back: its upgrade tasks end, by the version it came back as. */
  private verifyUpgrades(hostId: string): void {
    for (const [id, v] of this.verifying) {
      if (v.task.hostId !== hostId) continue;
      const came = this.link.get(hostId)?.agentVersion ?? '';
      this.verifying.delete(id);
      if (came === v.version) {
        v.task.stdout = `${v.task.stdout ?? ''}the agent is back as ${came}\n`;
        v.task.exitCode = 0;
        this.end(v.task, 'exited', 'done', null);
      } else {
        v.task.exitCode = 1;
        this.end(v.task, 'exited', 'done', `rolled back: the agent came back as ${came || 'an unknown version'}, not ${v.version} (the new version did not reach this hub within its trial)`);
      }
      void this.pump(v.run);
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, v] of this.verifying) {
      if (now < v.until) continue;
      this.verifying.delete(id);
      v.task.exitCode = 1;
      this.end(v.task, 'exited', 'done', `the agent did not come back within ${UPGRADE_VERIFY_MS / 1000} s of installing ${v.version}`);
      void this.pump(v.run);
    }
    const lostAfter = this.o.lostAfterMs ?? 10 * 60_000;
    const touched = new Set<Run>();
    for (const { run, task } of this.active.values()) {
      if (task.state === 'pending') {
        if (!this.link.isOnline(task.hostId)) touched.add(run); // waiting for a host: look again
        continue;
      }
      if (this.link.isOnline(task.hostId)) continue;
      const since = this.offlineSince.get(task.hostId) ?? this.startedAt;
      if (now - since > lostAfter) {
        this.end(task, 'lost', 'done', `the host has been disconnected for ${Math.round((now - since) / 1000)} s`);
        this.stats.lost++;
        touched.add(run);
      }
    }
    for (const run of touched) void this.pump(run);
  }

  // ---------------------------------------------------------------- persistence

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.flush();
    });
  }

  /** Writes every change in one transaction, then runs what waited for it (acks, events). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.dirtyTasks.size === 0 && this.dirtyJobs.size === 0 && this.afterCommit.length === 0) return;
    const tasks = [...this.dirtyTasks];
    const jobs = [...this.dirtyJobs];
    const after = this.afterCommit;
    this.dirtyTasks = new Set();
    this.dirtyJobs = new Set();
    this.afterCommit = [];
    this.flushing = (async () => {
      try {
        const c = this.cluster;
        const epoch = this.epoch;
        await this.store.save(tasks, jobs, c ? (tx) => c.fence(tx, epoch) : undefined);
        for (const f of after) f();
      } catch (err) {
        // Not acknowledged, so agents re-send; keep the changes for the next attempt.
        this.log.error({ err: (err as Error).message }, 'saving task state failed; will retry');
        for (const t of tasks) this.dirtyTasks.add(t);
        for (const j of jobs) this.dirtyJobs.add(j);
        this.afterCommit.unshift(...after);
        setTimeout(() => this.scheduleFlush(), 1000).unref();
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  // ---------------------------------------------------------------- output and subscribers

  private keepOutput(taskId: string, stream: 'stdout' | 'stderr', data: string, seq: number): void {
    let o = this.outputs.get(taskId);
    if (!o) this.outputs.set(taskId, (o = { chunks: [], bytes: 0 }));
    o.chunks.push({ stream, data, seq });
    o.bytes += data.length;
    const max = this.o.outputBufferBytes ?? 256 * 1024;
    while (o.bytes > max && o.chunks.length > 1) o.bytes -= o.chunks.shift()!.data.length;
  }

  /** Output received so far for a running task (for readers who arrive late). */
  liveOutput(taskId: string): { stream: 'stdout' | 'stderr'; data: string; seq: number }[] {
    return this.outputs.get(taskId)?.chunks ?? [];
  }

  private emitTask(run: Run, t: Task): void {
    this.publish(run.job.id, { type: 'task', task: t });
  }

  private publish(jobId: string, e: JobEvent): void {
    for (const s of this.subscribers.get(jobId) ?? []) s(e);
    if (this.cluster && this.leading) this.cluster.bus.publish(this.cluster.bus.subject('jobs', 'ev'), { jobId, e });
  }

  /**
   * Subscribes to a job's events. The current state is replayed first (every task, and the output
   * buffered for running ones), so that nothing between creating a job and subscribing is missed.
   */
  async subscribe(jobId: string, listener: (e: JobEvent) => void): Promise<(() => void) | undefined> {
    const run = this.runs.get(jobId);
    if (!run) {
      const job = await this.store.getJob(jobId);
      if (!job) return undefined;
      for (const t of await this.store.tasksOf(jobId)) listener({ type: 'task', task: t });
      listener({ type: 'job', job });
      // The scheduler runs on another hub: its events come over the bus.
      if (job.state === 'running' && this.cluster && !this.leading) return this.listen(jobId, listener);
      return () => {};
    }
    for (const t of [...run.tasks, ...run.health]) {
      // Output first, then the task: a finished task carries its whole output, so its chunks are not replayed.
      if (!isFinal(t)) for (const c of this.liveOutput(t.id)) listener({ type: 'output', taskId: t.id, hostId: t.hostId, hostname: t.hostname, ...c });
      listener({ type: 'task', task: t });
    }
    return this.listen(jobId, listener);
  }

  private listen(jobId: string, listener: (e: JobEvent) => void): () => void {
    let set = this.subscribers.get(jobId);
    if (!set) this.subscribers.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.subscribers.delete(jobId);
    };
  }

  /** Resolves when the job has ended (true), or the time is up or the hub is stopping (false). */
  waitFor(jobId: string, timeoutMs: number): Promise<boolean> {
    const remote = Boolean(this.cluster) && !this.leading;
    if (!remote && !this.runs.has(jobId)) return Promise.resolve(true);
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      let poll: NodeJS.Timeout | undefined;
      const done = (ended = true) => {
        clearTimeout(timer);
        clearInterval(poll);
        set.delete(done);
        resolve(ended);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(done);
      if (remote) {
        // The end comes as an event from the scheduler's hub; the database is asked too, in case
        // that event was missed (a hand-over, the bus reconnecting) or the job ended already.
        const check = () => void this.store.getJob(jobId).then((j) => (!j || j.state !== 'running') && done(), () => {});
        check();
        poll = setInterval(check, 1000);
      }
    });
  }

  // ---------------------------------------------------------------- reads and controls

  async getJob(id: string): Promise<{ job: Job; tasks: Task[] } | undefined> {
    const run = this.runs.get(id);
    if (run) return { job: run.job, tasks: [...run.tasks, ...run.health] };
    const job = await this.store.getJob(id);
    return job ? { job, tasks: await this.store.tasksOf(id) } : undefined;
  }

  async getTask(id: string): Promise<Task | undefined> {
    return this.active.get(id)?.task ?? (await this.store.getTask(id));
  }

  isActive(jobId: string): boolean {
    return this.runs.has(jobId);
  }

  /** Signals a task's process group on its host (through the scheduler's hub in a cluster). */
  async kill(taskId: string, signal: BodyOf<'task.kill'>['signal']): Promise<'sent' | 'cancelled' | 'not_running' | 'offline'> {
    if (this.leading || !this.cluster) return this.killHere(taskId, signal);
    return (await this.control({ op: 'kill', taskId, signal })) as 'sent' | 'cancelled' | 'not_running' | 'offline';
  }

  /** Cancels a job: nothing new starts, running tasks get SIGTERM. */
  async cancel(jobId: string): Promise<boolean> {
    if (this.leading || !this.cluster) return this.cancelHere(jobId);
    return (await this.control({ op: 'cancel', jobId })) === true;
  }

  private async control(c: Control): Promise<unknown> {
    const bus = this.cluster!.bus;
    // A hand-over in progress: the next scheduler is a few seconds away.
    for (let attempt = 0; ; attempt++) {
      try {
        return await bus.request(bus.subject('jobs', 'ctl'), c, 5000);
      } catch (err) {
        if (attempt >= 5) throw Object.assign(new Error(`the cluster's job scheduler did not answer (${(err as Error).message})`), { statusCode: 503 });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private killHere(taskId: string, signal: BodyOf<'task.kill'>['signal']): 'sent' | 'cancelled' | 'not_running' | 'offline' {
    const a = this.active.get(taskId);
    if (!a) return 'not_running';
    if (a.task.state === 'pending') {
      this.end(a.task, 'cancelled', 'cancelled', `cancelled (${signal} before it started)`);
      void this.pump(a.run);
      return 'cancelled';
    }
    const conn = this.link.get(a.task.hostId);
    if (!conn || conn.send('task.kill', { taskId, signal }) === undefined) return 'offline';
    return 'sent';
  }

  private cancelHere(jobId: string): boolean {
    const run = this.runs.get(jobId);
    if (!run) return false;
    run.cancelled = true;
    run.job.message = 'cancelled';
    for (const t of [...run.tasks, ...run.health]) if (t.state === 'sent' || t.state === 'running') this.link.get(t.hostId)?.send('task.kill', { taskId: t.id, signal: 'SIGTERM' });
    void this.pump(run);
    return true;
  }

  async forgetHost(hostId: string): Promise<void> {
    for (const { task } of [...this.active.values()]) if (task.hostId === hostId) this.end(task, 'lost', 'done', 'the host was removed');
    await this.flush();
    await this.store.deleteHost(hostId);
  }
}

function blankTask(jobId: string, hostId: string, hostname: string, idx: number, batch: number, phase: Task['phase'], now: number): Task {
  return {
    id: newTaskId(),
    jobId,
    hostId,
    hostname,
    idx,
    batch,
    phase,
    state: 'pending',
    status: null,
    exitCode: null,
    signal: null,
    error: null,
    stdout: null,
    stderr: null,
    stdoutBytes: 0,
    stderrBytes: 0,
    truncated: false,
    pid: null,
    createdAt: now,
    sentAt: null,
    startedAt: null,
    endedAt: null,
  };
}

/** Env values and stdin may hold secrets: views show that they were given, not what they were. */
export function redactSpec<T extends Partial<ExecSpec> | BundleJobSpec>(spec: T): T {
  if ('exec' in spec && spec.exec) return { ...spec, exec: redactSpec(spec.exec) };
  const e = spec as Partial<ExecSpec>;
  if (!e.env && e.stdin === undefined) return spec;
  return {
    ...spec,
    ...(e.env ? { env: Object.fromEntries(Object.keys(e.env).map((k) => [k, '[redacted]'])) } : {}),
    ...(e.stdin !== undefined ? { stdin: `[${Buffer.byteLength(e.stdin)} bytes]` } : {}),
  };
}

export function taskView(t: Task) {
  return {
    id: t.id,
    jobId: t.jobId,
    hostId: t.hostId,
    hostname: t.hostname,
    index: t.idx,
    batch: t.batch,
    phase: t.phase,
    state: t.state,
    status: t.status,
    ok: t.state === 'done' ? t.status === 'exited' && t.exitCode === 0 : null,
    exitCode: t.exitCode,
    signal: t.signal,
    error: t.error,
    stdout: t.stdout,
    stderr: t.stderr,
    stdoutBytes: t.stdoutBytes,
    stderrBytes: t.stderrBytes,
    truncated: t.truncated,
    pid: t.pid,
    createdAt: t.createdAt,
    sentAt: t.sentAt,
    startedAt: t.startedAt,
    endedAt: t.endedAt,
  };
}

export function jobView(j: Job, tasks?: Task[]) {
  const counts: Record<string, number> = {};
  if (tasks) for (const t of tasks.filter((x) => x.phase === 'main')) {
    const k = t.state === 'done' ? (t.status === 'exited' && t.exitCode === 0 ? 'succeeded' : 'failed') : t.state;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return {
    id: j.id,
    name: j.name,
    kind: j.kind,
    state: j.state,
    spec: redactSpec(j.spec as ExecSpec | BundleJobSpec),
    target: j.target,
    strategy: j.strategy,
    createdBy: j.createdBy,
    createdAt: j.createdAt,
    endedAt: j.endedAt,
    hostCount: j.hostCount,
    message: j.message,
    ...(tasks ? { counts } : {}),
  };
}
