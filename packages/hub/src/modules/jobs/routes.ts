/**
 * Commands and jobs over HTTP: POST /api/v1/exec (sync or async), jobs and tasks (read, cancel,
 * kill), runs per host, and a WebSocket stream of a job's tasks and output.
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ExecSpec, SIGNAL_INPUTS, signalName, matchesSelector, parseSelector, SelectorError } from '@tether/protocol';
import type { Host, HostStore } from '../hosts/store.js';
import { access, errors, hostAllowed } from '../../http.js';
import { JobRefusedError, jobView, taskView, type CreateJob, type JobService, type JobEvent } from './service.js';
import { StrategyError, StrategySchema, type Strategy } from './strategy.js';
import type { Task } from './store.js';
import type { ArtifactStore } from '../artifacts/store.js';

export const TargetSchema = Type.Object(
  {
    /** host ids or hostnames, in the order a sequence or rolling job should take them */
    hosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 100_000 })),
    /** label selector, e.g. `env=prod,role in (web,api)` */
    selector: Type.Optional(Type.String({ maxLength: 1024 })),
    /** hostname glob: `*` and `?` */
    glob: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  },
  { additionalProperties: false },
);
export type Target = { hosts?: string[]; selector?: string; glob?: string };

export class TargetError extends Error {
  constructor(
    readonly status: 400 | 403 | 404,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
}

/**
 * The hosts a target names, within what the request may touch. A named host outside the caller's
 * scope is unknown to them, answered like a name no host has; selector and glob matches outside
 * it are left out.
 */
export async function resolveTarget(hosts: HostStore, t: Target, req: FastifyRequest): Promise<Host[]> {
  if (!t.hosts?.length && t.selector === undefined && t.glob === undefined) throw new TargetError(400, 'no_target', 'name hosts, a selector or a glob');
  const all = await hosts.list({});
  const out = new Map<string, Host>();
  if (t.hosts?.length) {
    const missing: string[] = [];
    for (const name of t.hosts) {
      const found = all.filter((h) => (h.id === name || h.hostname === name) && hostAllowed(req, h.labels));
      if (found.length === 0) missing.push(name);
      for (const h of found) out.set(h.id, h);
    }
    if (missing.length) throw new TargetError(404, 'unknown_hosts', `no such host: ${missing.slice(0, 20).join(', ')}`);
  }
  if (t.selector !== undefined || t.glob !== undefined) {
    let sel;
    try {
      sel = t.selector !== undefined ? parseSelector(t.selector) : undefined;
    } catch (err) {
      if (err instanceof SelectorError) throw new TargetError(400, 'bad_selector', err.message);
      throw err;
    }
    const re = t.glob !== undefined ? globToRegExp(t.glob) : undefined;
    const matched = all.filter((h) => (!sel || matchesSelector(h.labels, sel)) && (!re || re.test(h.hostname)) && hostAllowed(req, h.labels));
    for (const h of matched) out.set(h.id, h);
  }
  if (out.size === 0) throw new TargetError(400, 'no_hosts', 'the target matches no hosts');
  return [...out.values()];
}

/** Exec options a job carries besides the command (shared with bundle runs). */
export const JobOptions = {
  strategy: Type.Optional(StrategySchema),
  mode: Type.Optional(Type.Union([Type.Literal('sync'), Type.Literal('async')])),
  wait: Type.Optional(Type.Number({ minimum: 0, maximum: 60 })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  callbackUrl: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://' })),
};

const ExecBody = Type.Object(
  {
    target: TargetSchema,
    ...Type.Omit(ExecSpec, ['stream']).properties,
    strategy: Type.Optional(StrategySchema),
    /** sync: wait (up to `wait` seconds, at most 60) and return the results; async: return the job at once */
    mode: Type.Optional(Type.Union([Type.Literal('sync'), Type.Literal('async')])),
    wait: Type.Optional(Type.Number({ minimum: 0, maximum: 60 })),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    /** called with the job's summary (POST, JSON) when it ends */
    callbackUrl: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://' })),
    /** leave out hosts whose agents do not allow exec (their tasks: skipped, refused) instead of refusing the job */
    skipRefused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** 400 answers of job creation: a refusal because of hosts names them (up to 50) and counts them all. */
export const JobCreateError = Type.Object({
  error: Type.String(),
  message: Type.String(),
  hosts: Type.Optional(Type.Array(Type.Object({ id: Type.String(), hostname: Type.String() }))),
  count: Type.Optional(Type.Integer()),
});

const TaskView = Type.Object({
  id: Type.String(),
  jobId: Type.String(),
  hostId: Type.String(),
  hostname: Type.String(),
  index: Type.Integer(),
  batch: Type.Integer(),
  phase: Type.String(),
  state: Type.String(),
  status: Type.Union([Type.String(), Type.Null()]),
  ok: Type.Union([Type.Boolean(), Type.Null()]),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  stdout: Type.Union([Type.String(), Type.Null()]),
  stderr: Type.Union([Type.String(), Type.Null()]),
  stdoutBytes: Type.Integer(),
  stderrBytes: Type.Integer(),
  truncated: Type.Boolean(),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.Number(),
  sentAt: Type.Union([Type.Number(), Type.Null()]),
  startedAt: Type.Union([Type.Number(), Type.Null()]),
  endedAt: Type.Union([Type.Number(), Type.Null()]),
});
const JobView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.String(),
  state: Type.String(),
  spec: Type.Unknown(),
  target: Type.Unknown(),
  strategy: Type.Unknown(),
  createdBy: Type.String(),
  createdAt: Type.Number(),
  endedAt: Type.Union([Type.Number(), Type.Null()]),
  hostCount: Type.Integer(),
  message: Type.Union([Type.String(), Type.Null()]),
  counts: Type.Optional(Type.Record(Type.String(), Type.Integer())),
});
export const JobWithTasks = Type.Object({ job: JobView, tasks: Type.Array(TaskView) });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export interface StartJob {
  kind: 'exec' | 'bundle' | 'upgrade';
  /** the job's spec, or made from the hosts the target resolved to */
  spec: CreateJob['spec'] | ((hosts: Host[]) => CreateJob['spec']);
  /** why a host would refuse (default: its agent does not allow exec) */
  refusal?: (h: Host) => string | undefined;
  target: Target;
  strategy?: unknown;
  mode?: 'sync' | 'async' | undefined;
  wait?: number | undefined;
  name?: string | undefined;
  callbackUrl?: string | undefined;
  skipRefused?: boolean | undefined;
}

/** Resolves the target, creates the job, and answers: at once (async) or when it ends (sync, ≤ 60 s). */
export async function startJob(jobs: JobService, hosts: HostStore, req: FastifyRequest, reply: FastifyReply, o: StartJob): Promise<FastifyReply> {
  let list: Host[];
  try {
    list = await resolveTarget(hosts, o.target, req);
  } catch (err) {
    if (err instanceof TargetError) return reply.code(err.status).send({ error: err.code, message: err.message });
    throw err;
  }
  noteAudit(req, ...list.map((h) => ({ type: 'host', id: h.id, name: h.hostname })));
  const byId = new Map(list.map((h) => [h.id, h]));
  let created;
  try {
    created = await jobs.create({
      ...(o.name ? { name: o.name } : {}),
      kind: o.kind,
      spec: typeof o.spec === 'function' ? o.spec(list) : o.spec,
      ...(o.refusal ? { refusal: (h: { id: string }) => o.refusal!(byId.get(h.id)!) } : {}),
      strategy: (o.strategy ?? { kind: 'parallel' }) as Strategy,
      target: o.target,
      hosts: list.map((h) => ({ id: h.id, hostname: h.hostname, capabilities: h.capabilities })),
      createdBy: req.user!.username,
      ...(o.callbackUrl ? { callbackUrl: o.callbackUrl } : {}),
      ...(o.skipRefused ? { skipRefused: true } : {}),
    });
  } catch (err) {
    if (err instanceof StrategyError) return reply.code(400).send({ error: 'bad_strategy', message: err.message });
    if (err instanceof JobRefusedError) return reply.code(400).send({ error: o.kind === 'upgrade' ? 'hosts_refuse_upgrade' : 'hosts_refuse_exec', message: err.message, hosts: err.hosts, count: err.count });
    throw err;
  }
  noteAudit(req, { type: 'job', id: created.job.id, name: created.job.name, role: 'result' });
  req.log.info({ jobId: created.job.id, kind: o.kind, hosts: list.length, by: req.user!.username, mode: o.mode ?? 'sync' }, 'job started');
  if (o.mode === 'async') return reply.code(202).send({ job: jobView(created.job, created.tasks), tasks: created.tasks.map(taskView) });
  const done = await jobs.waitFor(created.job.id, (o.wait ?? 60) * 1000);
  const now = (await jobs.getJob(created.job.id))!;
  return reply.code(done ? 200 : 202).send({ job: jobView(now.job, now.tasks), tasks: now.tasks.map(taskView) });
}

export interface JobRouteOptions {
  /** the agent artifacts (tether agent upgrade); absent: upgrades are not offered */
  artifacts?: ArtifactStore;
  /** registers a stream socket under its credential, so that revoking it closes the socket */
  trackSocket?: (credHash: string, socket: WebSocket) => void;
  originAllowed?: (req: FastifyRequest) => boolean;
}

export function jobRoutes(jobs: JobService, hosts: HostStore, opts: JobRouteOptions = {}) {
  /**
   * A scoped caller may see a job only when every host it touched is within scope; any other job,
   * and a task on a host outside it, does not exist for them (404, as for an unknown id), so that
   * nothing tells them what ran where. Their own hosts' runs are all listed under /hosts/:id/tasks.
   */
  const allowedTasks = async (req: FastifyRequest, tasks: Task[]): Promise<boolean> => {
    if (!req.hostScopes?.length) return true;
    const byId = new Map((await hosts.list({ includeRevoked: true })).map((h) => [h.id, h]));
    return tasks.every((t) => {
      const h = byId.get(t.hostId);
      return h !== undefined && hostAllowed(req, h.labels);
    });
  };

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.post(
      '/api/v1/exec',
      {
        ...access({ role: 'operator', scope: 'execute', stepUp: true }),
        schema: {
          tags: ['exec'],
          summary: 'Run a command on hosts (sync: wait up to 60 s for the results; async: get the job id at once). Hosts whose agents do not allow exec: a job they would stop (rolling, sequence, evenodd, or past maxFailures) is refused with 400 hosts_refuse_exec naming them, unless skipRefused leaves them out',
          body: ExecBody,
          response: { 200: JobWithTasks, 202: JobWithTasks, ...errors(401, 403, 404), 400: JobCreateError },
        },
      },
      async (req, reply) => {
        const { target, strategy, mode, wait, name, callbackUrl, skipRefused, ...spec } = req.body;
        if (spec.shell && spec.command.length !== 1) return reply.code(400).send({ error: 'bad_request', message: 'with shell: true, command is one script string' });
        return startJob(jobs, hosts, req, reply, { kind: 'exec', spec: { ...spec, stream: mode === 'async' }, target, strategy, mode, wait, name, callbackUrl, skipRefused });
      },
    );

    r.post(
      '/api/v1/agents/upgrade',
      {
        ...access({ role: 'admin', scope: 'execute', stepUp: true }),
        schema: {
          tags: ['exec'],
          summary: 'Upgrade agents to a version this hub holds (default: the newest), as a job with the usual strategies (rolling batches, maxFailures). Each agent fetches its architecture’s artifact over its own link, checks it, installs it beside the running version and restarts into it; a task succeeds when the agent comes back as the new version, and fails when it comes back as the old one (it did not reach the hub within 60 s and rolled back). Agents without auto_update = true in their own config refuse (400 hosts_refuse_upgrade, unless skipRefused)',
          body: Type.Object(
            {
              target: TargetSchema,
              version: Type.Optional(Type.String({ pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$', maxLength: 64 })),
              strategy: Type.Optional(StrategySchema),
              mode: Type.Optional(Type.Union([Type.Literal('sync'), Type.Literal('async')])),
              wait: Type.Optional(Type.Number({ minimum: 0, maximum: 60 })),
              skipRefused: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: { 200: JobWithTasks, 202: JobWithTasks, ...errors(401, 403, 404), 400: JobCreateError },
        },
      },
      async (req, reply) => {
        const store = opts.artifacts;
        const all = store ? await store.list() : [];
        const version = req.body.version ?? all[0]?.version;
        if (!version) return reply.code(400).send({ error: 'no_artifacts', message: 'this hub holds no agent artifacts (npm run package:agent, or put them in its artifacts_dir)' });
        const builds = all.filter((a) => a.version === version);
        if (!builds.length) return reply.code(400).send({ error: 'no_such_version', message: `this hub holds no agent ${version} (it holds ${[...new Set(all.map((a) => a.version))].slice(0, 10).join(', ') || 'none'})` });
        const artifacts = Object.fromEntries(builds.map((a) => [a.arch, { file: a.file, sha256: a.sha256, size: a.size }]));
        return startJob(jobs, hosts, req, reply, {
          kind: 'upgrade',
          name: `upgrade agents to ${version}`,
          spec: (list) => ({ version, artifacts, hostArch: Object.fromEntries(list.map((h) => [h.id, h.facts?.arch ?? ''])) }),
          refusal: (h) =>
            !h.facts?.access?.autoUpdate
              ? 'this host’s agent does not accept upgrades (auto_update = false in its local config)'
              : !artifacts[h.facts.arch as 'x64']
                ? `this hub holds no agent ${version} for ${h.facts.arch}`
                : undefined,
          target: req.body.target,
          strategy: req.body.strategy,
          mode: req.body.mode ?? 'async',
          wait: req.body.wait,
          skipRefused: req.body.skipRefused,
        });
      },
    );

    r.get(
      '/api/v1/jobs',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['exec'],
          summary: 'Recent jobs, newest first',
          querystring: Type.Object({
            state: Type.Optional(Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            before: Type.Optional(Type.Integer({ minimum: 0 })),
          }),
          response: { 200: Type.Object({ jobs: Type.Array(JobView) }), ...errors(400, 401) },
        },
      },
      async (req) => {
        const list = await jobs.store.listJobs({
          ...(req.query.state ? { state: req.query.state } : {}),
          ...(req.query.limit ? { limit: req.query.limit } : {}),
          ...(req.query.before ? { before: req.query.before } : {}),
          // A caller limited to some hosts sees the jobs it started.
          ...(req.hostScopes?.length ? { createdBy: req.user!.username } : {}),
        });
        return { jobs: list.map((j) => jobView(j)) };
      },
    );

    r.get(
      '/api/v1/jobs/:id',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['exec'],
          summary: 'A job with its tasks (output included unless output=false)',
          params: IdParams,
          querystring: Type.Object({ output: Type.Optional(Type.Boolean()) }),
          response: { 200: JobWithTasks, ...errors(401, 403, 404) },
        },
      },
      async (req, reply) => {
        const j = await jobs.getJob(req.params.id);
        if (!j) return reply.code(404).send({ error: 'not_found', message: 'no such job' });
        if (!(await allowedTasks(req, j.tasks))) return reply.code(404).send({ error: 'not_found', message: 'no such job' });
        const withOutput = req.query.output !== false;
        return { job: jobView(j.job, j.tasks), tasks: j.tasks.map((t) => ({ ...taskView(t), ...(withOutput ? {} : { stdout: null, stderr: null }) })) };
      },
    );

    r.post(
      '/api/v1/jobs/:id/cancel',
      {
        ...access({ role: 'operator', scope: 'execute' }),
        schema: { tags: ['exec'], summary: 'Cancel a job: nothing new starts, running tasks get SIGTERM', params: IdParams, response: { 200: Type.Object({ ok: Type.Boolean() }), ...errors(401, 403, 404, 409) } },
      },
      async (req, reply) => {
        const j = await jobs.getJob(req.params.id);
        if (!j) return reply.code(404).send({ error: 'not_found', message: 'no such job' });
        if (!(await allowedTasks(req, j.tasks))) return reply.code(404).send({ error: 'not_found', message: 'no such job' });
        noteAudit(req, { type: 'job', id: j.job.id, name: j.job.name }, ...j.tasks.map((t) => ({ type: 'host', id: t.hostId, name: t.hostname })));
        if (!(await jobs.cancel(req.params.id))) return reply.code(409).send({ error: 'not_running', message: `job already ${j.job.state}` });
        return { ok: true };
      },
    );

    r.get(
      '/api/v1/tasks/:id',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['exec'],
          summary: 'One task (one host of a job); while it runs, `live` holds the output received so far',
          params: IdParams,
          response: {
            200: Type.Object({ task: TaskView, live: Type.Array(Type.Object({ stream: Type.String(), data: Type.String(), seq: Type.Integer() })) }),
            ...errors(401, 403, 404),
          },
        },
      },
      async (req, reply) => {
        const t = await jobs.getTask(req.params.id);
        if (!t) return reply.code(404).send({ error: 'not_found', message: 'no such task' });
        if (!(await allowedTasks(req, [t]))) return reply.code(404).send({ error: 'not_found', message: 'no such task' });
        return { task: taskView(t), live: jobs.liveOutput(t.id) };
      },
    );

    r.post(
      '/api/v1/tasks/:id/kill',
      {
        ...access({ role: 'operator', scope: 'execute' }),
        schema: {
          tags: ['exec'],
          summary: 'Send a signal to a running task’s process group (default SIGTERM; KILL or SIGKILL alike)',
          params: IdParams,
          body: Type.Optional(Type.Object({ signal: Type.Optional(Type.Enum(SIGNAL_INPUTS)) }, { additionalProperties: false })),
          response: { 200: Type.Object({ result: Type.String() }), ...errors(400, 401, 403, 404, 409) },
        },
      },
      async (req, reply) => {
        const t = await jobs.getTask(req.params.id);
        if (!t) return reply.code(404).send({ error: 'not_found', message: 'no such task' });
        if (!(await allowedTasks(req, [t]))) return reply.code(404).send({ error: 'not_found', message: 'no such task' });
        noteAudit(req, { type: 'host', id: t.hostId, name: t.hostname }, { type: 'job', id: t.jobId });
        const result = await jobs.kill(t.id, signalName(req.body?.signal ?? 'SIGTERM')!);
        if (result === 'not_running') return reply.code(409).send({ error: 'not_running', message: `task already ${t.state}` });
        if (result === 'offline') return reply.code(409).send({ error: 'agent_offline', message: 'the host is not connected; try again when it is' });
        return { result };
      },
    );

    r.get(
      '/api/v1/hosts/:id/tasks',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['exec'],
          summary: 'Runs on one host, newest first (without output)',
          params: IdParams,
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), before: Type.Optional(Type.Integer({ minimum: 0 })) }),
          response: { 200: Type.Object({ tasks: Type.Array(TaskView) }), ...errors(401, 403, 404) },
        },
      },
      async (req, reply) => {
        const h = await hosts.get(req.params.id);
        if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
        return { tasks: (await jobs.store.tasksOfHost(h.id, req.query.limit ?? 100, req.query.before)).map(taskView) };
      },
    );

    app.get('/api/v1/jobs/:id/stream', { websocket: true, ...access({ role: 'viewer', scope: 'read' }), schema: { hide: true } }, async (socket, req) => {
      // Browsers send Origin; a page from another site must not ride on the session cookie.
      const origin = req.headers.origin;
      if (opts.originAllowed ? !opts.originAllowed(req) : origin && new URL(origin).host !== req.headers.host) return socket.close(4403, 'origin not allowed');
      if (req.auth) opts.trackSocket?.(req.auth.credHash, socket);
      const id = (req.params as { id: string }).id;
      const j = await jobs.getJob(id);
      if (!j) return socket.close(4404, 'no such job');
      if (!(await allowedTasks(req, j.tasks))) return socket.close(4404, 'no such job');
      const send = (e: JobEvent) => {
        if (socket.readyState !== socket.OPEN) return;
        // A reader that cannot keep up is dropped rather than buffered without bound.
        if (socket.bufferedAmount > 16 * 1024 * 1024) return socket.close(4429, 'too slow');
        const msg = e.type === 'task' ? { type: 'task', task: taskView(e.task) } : e.type === 'job' ? { type: 'job', job: jobView(e.job) } : e;
        socket.send(JSON.stringify(msg));
      };
      const unsubscribe = await jobs.subscribe(id, (e) => {
        send(e);
        if (e.type === 'job' && e.job.state !== 'running') setImmediate(() => socket.close(1000, 'job ended'));
      });
      socket.on('close', () => unsubscribe?.());
      socket.on('message', () => {}); // nothing to receive
    });
  };
}
