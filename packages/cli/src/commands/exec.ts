/**
 * `tether exec`, `tether job …`, `tether task …`, `tether runs`: run commands across hosts and
 * follow them. Output streams per host with a hostname prefix; with many hosts a progress line
 * stays at the bottom of a terminal. The exit code is non-zero when any host failed.
 */
import { Command, Option } from 'commander';
import { constants as osConstants } from 'node:os';
import { parseDurationSec, parseSelector, parseSignal } from '@tether/protocol/lite';
import { Client } from '../client.js';
import { fail, out } from '../output.js';
import { ago, table } from '../table.js';

interface TaskView {
  id: string;
  hostId: string;
  hostname: string;
  phase: string;
  state: string;
  status: string | null;
  ok: boolean | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  stdout: string | null;
  stderr: string | null;
  truncated: boolean;
  startedAt: number | null;
  endedAt: number | null;
  createdAt: number;
}
interface JobView {
  id: string;
  name: string;
  state: string;
  createdBy: string;
  createdAt: number;
  endedAt: number | null;
  hostCount: number;
  message: string | null;
  strategy: { kind: string };
  counts?: Record<string, number>;
}
interface JobWithTasks {
  job: JobView;
  tasks: TaskView[];
}

/** `-t` accepts a label selector (has = or !), a hostname glob (has * or ?), or host ids/names separated by commas. */
export function parseTarget(t: string): { hosts?: string[]; selector?: string; glob?: string } {
  if (/[=!]|\s(in|notin)\s/.test(t)) {
    parseSelector(t); // a clear error before anything is sent
    return { selector: t };
  }
  if (/[*?]/.test(t)) return { glob: t };
  const hosts = t.split(',').map((s) => s.trim()).filter(Boolean);
  if (hosts.length === 0) throw new Error('empty target');
  return { hosts };
}

function strategyOf(o: Record<string, unknown>): Record<string, unknown> {
  const chosen = ['parallel', 'rolling', 'sequence', 'evenodd'].filter((k) => o[k] !== undefined && o[k] !== false);
  if (chosen.length > 1) throw new Error(`choose one of --parallel, --rolling, --sequence, --evenodd (got ${chosen.join(', ')})`);
  const s: Record<string, unknown> = {};
  if (o.rolling !== undefined) {
    s.kind = 'rolling';
    const v = String(o.rolling);
    const m = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (m) s.batchPercent = Number(m[1]);
    else if (/^\d+$/.test(v) && Number(v) > 0) s.batchSize = Number(v);
    else throw new Error(`--rolling takes a batch size or a percentage, not ${JSON.stringify(v)}`);
  } else if (o.sequence) s.kind = 'sequence';
  else if (o.evenodd) s.kind = 'evenodd';
  else {
    s.kind = 'parallel';
    if (o.parallel !== undefined) {
      if (!/^\d+$/.test(String(o.parallel)) || Number(o.parallel) < 1) throw new Error('--parallel takes a positive number');
      s.concurrency = Number(o.parallel);
    }
  }
  if (o.maxFailures !== undefined) {
    const v = String(o.maxFailures);
    const m = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (m) s.maxFailurePercent = Number(m[1]);
    else if (/^\d+$/.test(v)) s.maxFailures = Number(v);
    else throw new Error('--max-failures takes a number or a percentage');
  }
  if (o.continueOnError) s.continueOnError = true;
  if (o.health) s.health = { command: [String(o.health)], shell: true };
  if (o.waitOffline) s.offlineWaitSec = parseDurationSec(String(o.waitOffline));
  return s;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Prints complete lines with a host prefix; keeps partial lines until their newline (or the end). */
class Printer {
  private partial = new Map<string, string>();
  private progressShown = false;
  constructor(
    private readonly prefix: boolean,
    private readonly width: number,
    private readonly progress: boolean,
  ) {}
  write(task: { id: string; hostname: string }, stream: 'stdout' | 'stderr', data: string): void {
    const key = `${task.id}:${stream}`;
    const text = (this.partial.get(key) ?? '') + data;
    const lines = text.split('\n');
    this.partial.set(key, lines.pop()!);
    if (lines.length) this.emit(task.hostname, stream, lines);
  }
  flush(task: { id: string; hostname: string }): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const key = `${task.id}:${stream}`;
      const rest = this.partial.get(key);
      if (rest) this.emit(task.hostname, stream, [rest]);
      this.partial.delete(key);
    }
  }
  private emit(host: string, stream: 'stdout' | 'stderr', lines: string[]): void {
    this.clearProgress();
    const p = this.prefix ? `${host.padEnd(this.width)} | ` : '';
    (stream === 'stdout' ? process.stdout : process.stderr).write(lines.map((l) => p + l + '\n').join(''));
  }
  clearProgress(): void {
    if (this.progressShown) {
      process.stderr.write('\r\x1b[2K');
      this.progressShown = false;
    }
  }
  showProgress(done: number, total: number, failed: number, running: number): void {
    if (!this.progress) return;
    const w = 30;
    const filled = Math.round((done / total) * w);
    process.stderr.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(w - filled)}] ${done}/${total} done, ${running} running, ${failed} failed`);
    this.progressShown = true;
  }
}

function describeTask(t: TaskView): string {
  if (t.status === 'exited') return t.exitCode === 0 ? 'ok' : `exit ${t.exitCode}`;
  return `${t.status ?? t.state}${t.signal ? ` (${t.signal})` : ''}${t.error ? `: ${t.error}` : ''}`;
}

/** A host left out at creation (--skip-refused): not run, and not a failure. */
const leftOut = (t: TaskView) => t.state === 'skipped' && t.status === 'refused';

/**
 * How `exec` and `job watch` exit. One host: as the command did there, so that a script can test
 * it like a local one — its own exit status; 128+N when signal N ended it (as a shell reports);
 * 124 when it hit --timeout (as timeout(1)); 255 when it never ran there (refused, offline, lost,
 * cancelled: as ssh does for its own failures). Several hosts: 0 when every host succeeded, else 1.
 */
export function exitStatus(final: JobWithTasks): number {
  const main = final.tasks.filter((t) => t.phase === 'main' && !leftOut(t));
  const bad = final.tasks.filter((t) => t.ok !== true && !leftOut(t));
  if (main.length !== 1) return bad.length ? 1 : 0;
  const t = main[0]!;
  if (bad.some((x) => x.phase === 'health')) return 1;
  if (t.status === 'timeout') return 124;
  if (t.signal) {
    const n = (osConstants.signals as Record<string, number>)[t.signal];
    if (n) return 128 + n;
  }
  if (t.status === 'exited' && t.exitCode !== null) return t.exitCode;
  return t.ok === true ? 0 : 255;
}

/** Follows a job on its stream until it ends; returns the final job. */
/** `ws` is loaded only by the commands that stream (and started early, while the request is out). */
const loadWs = () => import('ws').then((m) => m.default);

async function follow(client: Client, jobId: string, opts: { quiet: boolean; manyHosts: number }, known?: JobWithTasks): Promise<JobWithTasks> {
  const WebSocket = await loadWs();
  const initial = known ?? (await client.call<JobWithTasks>('GET', `/api/v1/jobs/${jobId}?output=false`));
  let finalJob: JobView | undefined;
  const hosts = initial.tasks.filter((t) => t.phase === 'main');
  const width = Math.min(32, Math.max(...initial.tasks.map((t) => t.hostname.length)));
  const tty = Boolean(process.stderr.isTTY);
  const printer = new Printer(initial.job.hostCount > 1, width, tty && initial.job.hostCount >= opts.manyHosts);
  const tasks = new Map<string, TaskView>(initial.tasks.map((t) => [t.id, t]));
  const printed = new Set<string>();
  const ended = new Set<string>();
  const progress = () => {
    const main = [...tasks.values()].filter((t) => t.phase === 'main');
    const done = main.filter((t) => ['done', 'skipped', 'cancelled'].includes(t.state));
    printer.showProgress(done.length, main.length, done.filter((t) => t.ok !== true).length, main.filter((t) => t.state === 'running').length);
  };
  const url = client.hub.replace(/^http/, 'ws').replace(/\/$/, '') + `/api/v1/jobs/${jobId}/stream`;
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url, client.wsOptions());
    let finished = false;
    let dead: Error | undefined;
    ws.once('open', () => client.heartbeat(ws, (err) => (dead = err)));
    ws.on('message', (raw) => {
      const e = JSON.parse(String(raw)) as { type: string; task?: TaskView; job?: JobView; taskId?: string; stream?: 'stdout' | 'stderr'; data?: string };
      if (e.type === 'output' && !opts.quiet) {
        const t = tasks.get(e.taskId!);
        if (t && !ended.has(t.id)) {
          printed.add(t.id);
          printer.write(t, e.stream!, e.data!);
        }
      } else if (e.type === 'task' && e.task) {
        tasks.set(e.task.id, e.task);
        const t = e.task;
        if (['done', 'skipped', 'cancelled'].includes(t.state) && !ended.has(t.id)) {
          ended.add(t.id);
          if (!opts.quiet) {
            // Output that was not streamed (a task that ended before we subscribed) comes with the result.
            if (!printed.has(t.id)) {
              if (t.stdout) printer.write(t, 'stdout', t.stdout);
              if (t.stderr) printer.write(t, 'stderr', t.stderr);
            }
            printer.flush(t);
          }
        }
        progress();
      } else if (e.type === 'job' && e.job && e.job.state !== 'running') {
        finalJob = e.job;
        finished = true;
        ws.close();
      }
    });
    ws.on('close', () => (finished ? resolve() : reject(dead ? new Error(`${dead.message}; the job goes on: follow it with \`tether job watch ${jobId}\``) : new Error('the job stream closed before the job ended; follow it with `tether job show ' + jobId + '`'))));
    ws.on('error', (err) => reject(client.wsError(err)));
  });
  printer.clearProgress();
  void hosts;
  // The stream carried every task's final state (with its output) and then the job's: no second request.
  return { job: finalJob!, tasks: [...tasks.values()] };
}

/** `tether agent upgrade`: roll agents forward to a version the hub holds, as a job. */
export async function agentUpgrade(o: Record<string, unknown>): Promise<void> {
  try {
    const body = {
      target: parseTarget(String(o.target)),
      ...(o.to ? { version: String(o.to) } : {}),
      strategy: strategyOf(o),
      ...(o.skipRefused ? { skipRefused: true } : {}),
      mode: 'async',
    };
    const client = Client.fromState();
    const created = await client.call<JobWithTasks>('POST', '/api/v1/agents/upgrade', body);
    if (o.detach) {
      out(Boolean(o.json), created.job, () => created.job.id);
      return;
    }
    if (!o.json) process.stderr.write(`${created.job.name}: ${created.tasks.length} host(s), job ${created.job.id}\n`);
    const final = await follow(client, created.job.id, { quiet: true, manyHosts: 10 }, created);
    if (o.json) out(true, final, () => '');
    else {
      const main = final.tasks.filter((t) => t.phase === 'main');
      const width = Math.max(...main.map((t) => t.hostname.length), 4);
      const how = (t: TaskView) => (t.ok === true ? 'upgraded' : leftOut(t) ? `left out: ${t.error ?? ''}` : (t.error ?? t.stderr?.trim()) || describeTask(t));
      for (const t of main) process.stdout.write(`${t.hostname.padEnd(width)}  ${how(t)}\n`);
      const ok = main.filter((t) => t.ok === true).length;
      process.stderr.write(`${ok}/${main.filter((t) => !leftOut(t)).length} upgraded${final.job.message ? ` — ${final.job.message}` : ''} (job ${final.job.id})\n`);
    }
    process.exit(exitStatus(final));
  } catch (err) {
    fail(err);
  }
}

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command on hosts: tether exec -t TARGET [options] -- CMD ARGS…')
    .requiredOption('-t, --target <target>', 'host ids or hostnames (comma-separated), a label selector (env=prod,role!=db) or a hostname glob (web-*)')
    .option('--parallel <n>', 'at most n hosts at once (default: all)')
    .option('--rolling <n|p%>', 'rolling batches of n hosts (or p% of them); stops when failures exceed --max-failures (default 0)')
    .option('--sequence', 'one host at a time, stopping at the first failure')
    .option('--evenodd', 'odd-numbered hosts first, then the even ones')
    .option('--max-failures <n|p%>', 'failures tolerated before a job stops starting hosts')
    .option('--continue-on-error', 'never stop because of failures')
    .option('--health <script>', 'rolling: shell script run on each batch before the next one starts')
    .option('--wait-offline <duration>', 'wait this long for a disconnected host before calling it offline')
    .option('--skip-refused', 'leave out hosts whose agents do not allow exec (a rolling or sequence job is refused otherwise, naming them)')
    .option('--shell', 'the command is one shell script (run by /bin/sh -c); otherwise argv is executed directly')
    .option('--cwd <dir>', 'working directory (absolute)')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .option('-u, --user <user>', 'run as this user')
    .addOption(new Option('--run-as <method>', 'how to become --user').choices(['setuid', 'sudo', 'su']))
    .option('--timeout <duration>', 'kill the command (SIGTERM, then SIGKILL) after this long, e.g. 30s, 5m')
    .option('--stdin', 'send this command’s standard input to the remote command (up to 256 KiB)')
    .option('--callback <url>', 'URL the hub POSTs the job summary to when it ends')
    .option('--name <name>', 'a name for the job')
    .option('--detach', 'print the job id and return at once')
    .option('-q, --quiet', 'no command output, only the summary')
    .option('--json', 'print the finished job as JSON (no streaming)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (command: string[], o) => {
      try {
        const target = parseTarget(o.target);
        if (o.shell && command.length !== 1) throw new Error('--shell takes the script as one argument: tether exec -t … --shell -- "cmd | cmd"');
        const env: Record<string, string> = {};
        for (const pair of (o.env as string[] | undefined) ?? []) {
          const i = pair.indexOf('=');
          if (i < 1) throw new Error(`--env takes KEY=VALUE, not ${JSON.stringify(pair)}`);
          env[pair.slice(0, i)] = pair.slice(i + 1);
        }
        let stdin: string | undefined;
        if (o.stdin) {
          const chunks: Buffer[] = [];
          for await (const c of process.stdin) chunks.push(c as Buffer);
          stdin = Buffer.concat(chunks).toString('utf8');
        }
        const body = {
          target,
          command,
          ...(o.shell ? { shell: true } : {}),
          ...(o.cwd ? { cwd: o.cwd } : {}),
          ...(Object.keys(env).length ? { env } : {}),
          ...(o.user ? { user: o.user } : {}),
          ...(o.runAs ? { runAs: o.runAs } : {}),
          ...(o.timeout ? { timeoutSec: parseDurationSec(o.timeout) } : {}),
          ...(stdin !== undefined ? { stdin } : {}),
          ...(o.callback ? { callbackUrl: o.callback } : {}),
          ...(o.name ? { name: o.name } : {}),
          strategy: strategyOf(o),
          ...(o.skipRefused ? { skipRefused: true } : {}),
          mode: 'async',
        };
        const client = Client.fromState();
        if (!o.detach) void loadWs(); // in parallel with the request
        const created = await client.call<JobWithTasks>('POST', '/api/v1/exec', body);
        if (o.detach) {
          out(Boolean(o.json), created.job, () => created.job.id);
          return;
        }
        const final = await follow(client, created.job.id, { quiet: Boolean(o.quiet || o.json), manyHosts: 10 }, created);
        const main = final.tasks.filter((t) => t.phase === 'main' && !leftOut(t));
        const bad = final.tasks.filter((t) => t.ok !== true && !leftOut(t));
        const skipped = final.tasks.filter(leftOut);
        if (o.json) out(true, final, () => '');
        else {
          const width = Math.max(...bad.map((t) => t.hostname.length), 4);
          for (const t of bad) process.stderr.write(`${t.hostname.padEnd(width)}  ${t.phase === 'health' ? 'health check: ' : ''}${describeTask(t)}\n`);
          if (skipped.length) process.stderr.write(`left out (their agents do not allow exec): ${skipped.slice(0, 20).map((t) => t.hostname).join(', ')}${skipped.length > 20 ? ` and ${skipped.length - 20} more` : ''}\n`);
          const ok = main.filter((t) => t.ok === true).length;
          if (main.length > 1 || bad.length) process.stderr.write(`${ok}/${main.length} succeeded${final.job.message ? ` — ${final.job.message}` : ''} (job ${final.job.id})\n`);
        }
        process.exit(exitStatus(final));
      } catch (err) {
        fail(err);
      }
    });

  const job = program.command('job').description('jobs: commands run across hosts');
  job
    .command('ls')
    .description('recent jobs')
    .addOption(new Option('--state <state>').choices(['running', 'succeeded', 'failed', 'cancelled']))
    .option('-n, --limit <n>', 'how many', '50')
    .option('--json', 'machine-readable output')
    .action(async (o) => {
      try {
        const qs = new URLSearchParams({ limit: String(o.limit) });
        if (o.state) qs.set('state', o.state);
        const r = await Client.fromState().call<{ jobs: JobView[] }>('GET', `/api/v1/jobs?${qs}`);
        out(Boolean(o.json), r, () =>
          table(
            ['ID', 'STATE', 'HOSTS', 'STRATEGY', 'BY', 'STARTED', 'NAME'],
            r.jobs.map((j) => [j.id, j.state, String(j.hostCount), j.strategy.kind, j.createdBy, ago(j.createdAt), j.name.slice(0, 60)]),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
  job
    .command('show <id>')
    .description('a job and how it went on each host (with --output, what each host printed)')
    .option('--output', 'print each host’s output')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o) => {
      try {
        const r = await Client.fromState().call<JobWithTasks>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
        out(Boolean(o.json), r, () => {
          const head = `${r.job.id}  ${r.job.state}  ${r.job.name}\nby ${r.job.createdBy}, ${ago(r.job.createdAt)}, strategy ${r.job.strategy.kind}${r.job.message ? `\n${r.job.message}` : ''}\n`;
          const rows = table(
            ['HOST', 'PHASE', 'STATE', 'RESULT', 'TIME', 'TASK'],
            r.tasks.map((t) => [t.hostname, t.phase, t.state, t.state === 'done' ? describeTask(t) : '', t.startedAt && t.endedAt ? `${((t.endedAt - t.startedAt) / 1000).toFixed(1)}s` : '', t.id]),
          );
          const outputs = o.output ? r.tasks.map((t) => `\n--- ${t.hostname} (${t.phase})\n${t.stdout ?? ''}${t.stderr ? `--- stderr\n${t.stderr}` : ''}`).join('') : '';
          return head + '\n' + rows + outputs;
        });
      } catch (err) {
        fail(err);
      }
    });
  job
    .command('cancel <id>')
    .description('cancel a job: nothing new starts, running tasks get SIGTERM')
    .action(async (id: string) => {
      try {
        await Client.fromState().call('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`);
        process.stdout.write(`cancelled ${id}\n`);
      } catch (err) {
        fail(err);
      }
    });
  job
    .command('watch <id>')
    .description('follow a running job’s output until it ends')
    .action(async (id: string) => {
      try {
        const final = await follow(Client.fromState(), id, { quiet: false, manyHosts: 10 });
        process.exit(exitStatus(final));
      } catch (err) {
        fail(err);
      }
    });

  const task = program.command('task').description('one host’s part of a job');
  task
    .command('show <id>')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o) => {
      try {
        const r = await Client.fromState().call<{ task: TaskView; live: { stream: string; data: string }[] }>('GET', `/api/v1/tasks/${encodeURIComponent(id)}`);
        out(Boolean(o.json), r, () => {
          const t = r.task;
          const body = t.state === 'done' ? `${t.stdout ?? ''}${t.stderr ? `--- stderr\n${t.stderr}` : ''}` : r.live.map((c) => c.data).join('');
          return `${t.id} on ${t.hostname}: ${t.state}${t.state === 'done' ? ` — ${describeTask(t)}` : ''}${t.truncated ? ' (output truncated)' : ''}\n${body}`;
        });
      } catch (err) {
        fail(err);
      }
    });
  task
    .command('kill <id>')
    .description('signal a running task’s process group')
    .option('-s, --signal <signal>', 'TERM, KILL, HUP, INT, QUIT, USR1, USR2, STOP or CONT (SIGKILL works too)', 'TERM')
    .action(async (id: string, o) => {
      try {
        const r = await Client.fromState().call<{ result: string }>('POST', `/api/v1/tasks/${encodeURIComponent(id)}/kill`, { signal: parseSignal(o.signal) });
        process.stdout.write(`${r.result}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('runs <host>')
    .description('commands run on one host, newest first')
    .option('-n, --limit <n>', 'how many', '50')
    .option('--json', 'machine-readable output')
    .action(async (host: string, o) => {
      try {
        const r = await Client.fromState().call<{ tasks: TaskView[] }>('GET', `/api/v1/hosts/${encodeURIComponent(host)}/tasks?limit=${Number(o.limit) || 50}`);
        out(Boolean(o.json), r, () =>
          table(
            ['TASK', 'JOB', 'STATE', 'RESULT', 'WHEN'],
            r.tasks.map((t) => [t.id, (t as unknown as { jobId: string }).jobId, t.state, t.state === 'done' ? describeTask(t) : '', ago(t.createdAt)]),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
}
