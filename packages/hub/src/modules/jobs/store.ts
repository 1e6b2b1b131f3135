/**
 * Jobs and their tasks (one task per host and phase). Owns `jobs` and `tasks`. The scheduler's
 * whole state lives here, so a restarted hub carries on where it stopped.
 */
import { sql, type Kysely } from 'kysely';
import type { ModuleMigrations } from '../../db/migrate.js';

export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled';
/** pending: not sent yet; sent: sent, not confirmed started; running: the agent started it; then one of the ends. */
export type TaskState = 'pending' | 'sent' | 'running' | 'done' | 'skipped' | 'cancelled';
/** The agent's statuses, plus the hub's own: offline (never reached the host), lost (the host never came back). */
export type HubTaskStatus = 'exited' | 'killed' | 'timeout' | 'failed' | 'refused' | 'lost' | 'offline' | 'skipped' | 'cancelled';

interface JobsTable {
  id: string;
  name: string;
  kind: string;
  spec: string;
  target: string;
  strategy: string;
  state: string;
  created_by: string;
  created_at: number;
  ended_at: number | null;
  host_count: number;
  callback_url: string | null;
  message: string | null;
}
interface TasksTable {
  id: string;
  job_id: string;
  host_id: string;
  hostname: string;
  idx: number;
  batch: number;
  phase: string;
  state: string;
  status: string | null;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
  stdout: string | null;
  stderr: string | null;
  stdout_bytes: number;
  stderr_bytes: number;
  truncated: number;
  pid: number | null;
  created_at: number;
  sent_at: number | null;
  started_at: number | null;
  ended_at: number | null;
}
interface Tables {
  jobs: JobsTable;
  tasks: TasksTable;
}

export const jobsMigrations: ModuleMigrations = {
  '0010_jobs_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(256)', (c) => c.notNull())
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('host_count', 'integer', (c) => c.notNull())
        .addColumn('callback_url', 'text')
        .addColumn('message', 'text')
        .execute();
      await db.schema.createIndex('jobs_state').on('jobs').columns(['state']).execute();
      await db.schema.createIndex('jobs_created').on('jobs').columns(['created_at']).execute();
      await db.schema
        .createTable('tasks')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('hostname', 'varchar(253)', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('batch', 'integer', (c) => c.notNull())
        .addColumn('phase', 'varchar(16)', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('status', 'varchar(16)')
        .addColumn('exit_code', 'integer')
        .addColumn('signal', 'varchar(16)')
        .addColumn('error', 'text')
        .addColumn('stdout', 'text')
        .addColumn('stderr', 'text')
        .addColumn('stdout_bytes', 'bigint', (c) => c.notNull())
        .addColumn('stderr_bytes', 'bigint', (c) => c.notNull())
        .addColumn('truncated', 'integer', (c) => c.notNull())
        .addColumn('pid', 'integer')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('sent_at', 'bigint')
        .addColumn('started_at', 'bigint')
        .addColumn('ended_at', 'bigint')
        .execute();
      await db.schema.createIndex('tasks_job').on('tasks').columns(['job_id', 'idx']).execute();
      await db.schema.createIndex('tasks_host').on('tasks').columns(['host_id', 'created_at']).execute();
      await db.schema.createIndex('tasks_state').on('tasks').columns(['state']).execute();
    },
  },
};

export interface Job {
  id: string;
  name: string;
  kind: 'exec' | 'bundle' | 'upgrade';
  spec: unknown;
  target: unknown;
  strategy: unknown;
  state: JobState;
  createdBy: string;
  createdAt: number;
  endedAt: number | null;
  hostCount: number;
  callbackUrl: string | null;
  message: string | null;
}

export interface Task {
  id: string;
  jobId: string;
  hostId: string;
  hostname: string;
  idx: number;
  batch: number;
  phase: 'main' | 'health';
  state: TaskState;
  status: HubTaskStatus | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  stdout: string | null;
  stderr: string | null;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  pid: number | null;
  createdAt: number;
  sentAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
}

const toJob = (r: JobsTable): Job => ({
  id: r.id,
  name: r.name,
  kind: r.kind as Job['kind'],
  spec: JSON.parse(r.spec),
  target: JSON.parse(r.target),
  strategy: JSON.parse(r.strategy),
  state: r.state as JobState,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
  hostCount: r.host_count,
  callbackUrl: r.callback_url,
  message: r.message,
});

const toTask = (r: TasksTable): Task => ({
  id: r.id,
  jobId: r.job_id,
  hostId: r.host_id,
  hostname: r.hostname,
  idx: r.idx,
  batch: r.batch,
  phase: r.phase as Task['phase'],
  state: r.state as TaskState,
  status: r.status as HubTaskStatus | null,
  exitCode: r.exit_code,
  signal: r.signal,
  error: r.error,
  stdout: r.stdout,
  stderr: r.stderr,
  stdoutBytes: Number(r.stdout_bytes),
  stderrBytes: Number(r.stderr_bytes),
  truncated: r.truncated === 1,
  pid: r.pid,
  createdAt: Number(r.created_at),
  sentAt: r.sent_at === null ? null : Number(r.sent_at),
  startedAt: r.started_at === null ? null : Number(r.started_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
});

const taskRow = (t: Task): TasksTable => ({
  id: t.id,
  job_id: t.jobId,
  host_id: t.hostId,
  hostname: t.hostname,
  idx: t.idx,
  batch: t.batch,
  phase: t.phase,
  state: t.state,
  status: t.status,
  exit_code: t.exitCode,
  signal: t.signal,
  error: t.error,
  stdout: t.stdout,
  stderr: t.stderr,
  stdout_bytes: t.stdoutBytes,
  stderr_bytes: t.stderrBytes,
  truncated: t.truncated ? 1 : 0,
  pid: t.pid,
  created_at: t.createdAt,
  sent_at: t.sentAt,
  started_at: t.startedAt,
  ended_at: t.endedAt,
});

/** PostgreSQL's text cannot hold NUL; output is text for people, so NUL becomes U+FFFD everywhere. */
export const clean = (s: string | null): string | null => (s === null ? null : s.includes('\0') ? s.replace(/\0/g, '\uFFFD') : s);

/** Columns a save may change (everything but identity and creation). */
const MUTABLE = ['hostname', 'idx', 'batch', 'phase', 'state', 'status', 'exit_code', 'signal', 'error', 'stdout', 'stderr', 'stdout_bytes', 'stderr_bytes', 'truncated', 'pid', 'sent_at', 'started_at', 'ended_at'] as const;

export interface JobQuery {
  state?: JobState;
  createdBy?: string;
  limit?: number;
  before?: number;
}

export class JobStore {
  private readonly db: Kysely<Tables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<Tables>;
  }

  async createJob(job: Job, tasks: Task[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('jobs')
        .values({
          id: job.id,
          name: job.name,
          kind: job.kind,
          spec: JSON.stringify(job.spec),
          target: JSON.stringify(job.target),
          strategy: JSON.stringify(job.strategy),
          state: job.state,
          created_by: job.createdBy,
          created_at: job.createdAt,
          ended_at: job.endedAt,
          host_count: job.hostCount,
          callback_url: job.callbackUrl,
          message: job.message,
        })
        .execute();
      for (let i = 0; i < tasks.length; i += 200) await tx.insertInto('tasks').values(tasks.slice(i, i + 200).map(taskRow)).execute();
    });
  }

  async addTasks(tasks: Task[]): Promise<void> {
    for (let i = 0; i < tasks.length; i += 200) await this.db.insertInto('tasks').values(tasks.slice(i, i + 200).map(taskRow)).execute();
  }

  /** Writes the changed tasks (and jobs) in one transaction. */
  /**
   * `fence` runs first inside the transaction, through its executor: in a cluster it checks that
   * this hub still holds the job scheduler's lease at the epoch it acted under, and throws when
   * not, so that a scheduler that lost its lease cannot write over the next one's.
   */
  async save(tasks: Task[], jobs: Job[] = [], fence?: (tx: Kysely<any>) => Promise<void>): Promise<void> {
    if (tasks.length === 0 && jobs.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      if (fence) await fence(tx);
      // Tasks always exist already: one multi-row upsert per slice instead of a statement per task
      // (at a thousand hosts, building and preparing per-row UPDATEs was a third of the hub's CPU).
      for (let i = 0; i < tasks.length; i += 200) {
        const rows = tasks.slice(i, i + 200).map((t) => {
          const r = taskRow(t);
          return { ...r, stdout: clean(r.stdout), stderr: clean(r.stderr), error: clean(r.error) };
        });
        await tx
          .insertInto('tasks')
          .values(rows)
          .onConflict((oc) => oc.column('id').doUpdateSet(Object.fromEntries(MUTABLE.map((c) => [c, sql.ref(`excluded.${c}`)])) as never))
          .execute();
      }
      for (const j of jobs) await tx.updateTable('jobs').set({ state: j.state, ended_at: j.endedAt, message: j.message }).where('id', '=', j.id).execute();
    });
  }

  async getJob(id: string): Promise<Job | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toJob(r) : undefined;
  }

  async listJobs(q: JobQuery = {}): Promise<Job[]> {
    let qb = this.db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit ?? 100);
    if (q.state) qb = qb.where('state', '=', q.state);
    if (q.createdBy) qb = qb.where('created_by', '=', q.createdBy);
    if (q.before) qb = qb.where('created_at', '<', q.before);
    return (await qb.execute()).map(toJob);
  }

  async runningJobs(): Promise<Job[]> {
    return (await this.db.selectFrom('jobs').selectAll().where('state', '=', 'running').execute()).map(toJob);
  }

  async tasksOf(jobId: string, opts: { withOutput?: boolean } = {}): Promise<Task[]> {
    const rows = await this.db.selectFrom('tasks').selectAll().where('job_id', '=', jobId).orderBy('phase').orderBy('idx').execute();
    return rows.map((r) => (opts.withOutput === false ? { ...toTask(r), stdout: null, stderr: null } : toTask(r)));
  }

  async getTask(id: string): Promise<Task | undefined> {
    const r = await this.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toTask(r) : undefined;
  }

  async tasksOfHost(hostId: string, limit: number, before?: number): Promise<Task[]> {
    let qb = this.db
      .selectFrom('tasks')
      .selectAll()
      .where('host_id', '=', hostId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (before) qb = qb.where('created_at', '<', before);
    return (await qb.execute()).map((r) => ({ ...toTask(r), stdout: null, stderr: null }));
  }

  async deleteHost(hostId: string): Promise<void> {
    await this.db.deleteFrom('tasks').where('host_id', '=', hostId).execute();
  }
}
