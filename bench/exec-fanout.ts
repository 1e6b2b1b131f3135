/**
 * Fan-out of one command (`uptime`) to a fleet, until every result is back:
 *
 *   1. Tether, N real agents (default 20): each its own process in its own network namespace with
 *      its own address and hostname (test/fleet/netns.ts), capabilities metrics + exec. Timed:
 *      POST /api/v1/exec {target: {glob: 'ns-*'}, mode: 'sync'} until the response (the hub answers
 *      once every result is committed); the same in async mode followed on the job's WebSocket
 *      stream; and the CLI, `tether exec -t 'ns-*' -- uptime`, wall time including Node's start.
 *   2. Ansible on the same N hosts: an sshd in every namespace (own host key, own address), then
 *      `ansible all -i INV -m command -a uptime -f N`. Default settings (ControlPersist on, so
 *      measured rounds reuse the SSH connections the warm-up opened), plus ControlPersist off and
 *      pipelining on, for comparison.
 *   3. Tether, 1,000 simulated agents (real protocol, real Ed25519 handshakes) in a child process,
 *      answering task.start like an agent (task.accepted, then task.result with uptime's output;
 *      no process is spawned, nothing is fsync'd). Timed: the same sync exec to all of them.
 *
 * Also the CPU each fan-out costs (hub + agents, or ansible + its ssh + the sshds), and the time
 * split along one task's path (hub → agent → hub) from the task timestamps.
 *
 * Needs root (namespaces; apt-get for ansible and openssh-server when they are missing).
 *
 * Usage: npm run build && node bench/dist/exec-fanout.js [--hosts 20] [--sims 1000] [--rounds 10]
 *          [--ansible-rounds 5] [--cli-rounds 5] [--only real,ansible,sims]
 * HUB_NODE_ARGS='--cpu-prof --cpu-prof-dir DIR' profiles the hubs.
 * Writes bench/results/exec-fanout.md (appended) and bench/results/exec-fanout.json (latest run).
 */
import { execFileSync, spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, authPayload, encodeFrame, signPayload, type BodyOf, type Capability, type TaskResultBody } from '@tether/protocol';
import { CLI, RawAgent, TestHub, simFacts, newSimIdentity, writeAgentConfig, type SimIdentity } from '@tether/testkit';
// The bench project does not reference the test project: types come from its compiled
// declarations, the module is loaded from its compiled output at run time (as agent-collect.ts does).
import type * as Netns from '../test/dist/fleet/netns.js';
import type * as Cleanup from '../test/dist/fleet/cleanup.js';
import { RESULTS, machine, percentile, pool } from './lib/util.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist
const repo = join(here, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------ arguments

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const N = flag('hosts', 20);
const SIMS = flag('sims', 1000);
const ROUNDS = flag('rounds', 10);
const CLI_ROUNDS = flag('cli-rounds', 5);
const ANSIBLE_ROUNDS = flag('ansible-rounds', 5);
const onlyArg = process.argv.indexOf('--only');
/** e.g. HUB_NODE_ARGS='--cpu-prof --cpu-prof-dir /tmp/prof' to profile the hubs (as ingest.ts) */
const hubNodeArgs = process.env.HUB_NODE_ARGS ? { nodeArgs: process.env.HUB_NODE_ARGS.split(' ') } : {};
const ONLY = new Set(onlyArg > 0 ? process.argv[onlyArg + 1]!.split(',') : ['real', 'ansible', 'sims']);

// ------------------------------------------------------------------------------------ helpers

/** utime + stime + cutime + cstime of a process (its reaped children included), in seconds */
function cpuAll(pid: number | 'self'): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const r = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(r[11]) + Number(r[12]) + Number(r[13]) + Number(r[14])) / 100;
  } catch {
    return 0;
  }
}
const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + cpuAll(p), 0);

/**
 * CPU of process trees: every live process under the roots, each with its reaped children. A
 * process that exits between two readings moves into its parent's cutime, so deltas stay right
 * (sshd sessions kept open by ControlPersist are alive, so their work is counted too). Plus the
 * live processes whose command line contains `marker` (ssh ControlPersist masters, detached).
 */
function treeCpu(roots: number[], marker?: string): number {
  const parent = new Map<number, number>();
  const extra: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]));
      if (marker && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) extra.push(Number(d));
    } catch {
      /* gone */
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, i = 0; p > 1 && i < 64; p = parent.get(p) ?? 0, i++) if (roots.includes(p)) return true;
    return false;
  };
  const pids = new Set([...parent.keys()].filter(inTree).concat(extra));
  return cpuOf([...pids]);
}

interface Stats {
  n: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
}
function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, medianMs: r1(percentile(s, 50)), p95Ms: r1(percentile(s, 95)), minMs: r1(s[0] ?? NaN), maxMs: r1(s[s.length - 1] ?? NaN) };
}
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** The 1-minute load average, sampled every second while the bench runs. */
const loadSamples: number[] = [];
const loadTimer = setInterval(() => loadSamples.push(loadavg()[0]!), 1000);
loadTimer.unref();

function log(s: string): void {
  process.stderr.write(`[exec-fanout] ${s}\n`);
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** What one small write + fdatasync costs where the agents keep their state (tmpdir), median of 30. */
function fdatasyncMs(): { medianMs: number; fs: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-fsync-'));
  try {
    const fd = openSync(join(dir, 'f'), 'a');
    const xs: number[] = [];
    for (let i = 0; i < 30; i++) {
      writeSync(fd, JSON.stringify({ id: `t_${i}`, s: 'running', t: Date.now() }) + '\n');
      const t0 = performance.now();
      fdatasyncSync(fd);
      xs.push(performance.now() - t0);
    }
    closeSync(fd);
    const fs = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim().replace('ext2/ext3', 'ext2/3/4');
    return { medianMs: r2(median(xs)), fs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------ Tether exec

type TaskView = { hostname: string; state: string; status: string | null; ok: boolean | null; exitCode: number | null; stdout: string | null; sentAt: number | null; startedAt: number | null; endedAt: number | null };
type JobView = { id: string; state: string; createdAt: number; endedAt: number | null; counts?: Record<string, number> };
type JobWithTasks = { job: JobView; tasks: TaskView[] };

function checkJob(j: JobWithTasks, n: number): void {
  const bad = j.tasks.filter((t) => !(t.ok && t.status === 'exited' && t.exitCode === 0 && /load average/.test(t.stdout ?? '')));
  if (j.job.state !== 'succeeded' || j.tasks.length !== n || bad.length > 0) {
    throw new Error(`job ${j.job.id}: state ${j.job.state}, ${j.tasks.length} tasks (want ${n}), ${bad.length} not ok: ${JSON.stringify(bad.slice(0, 3))}`);
  }
}

/** Where the time of one round went, from the task timestamps (all clocks are this machine's). */
interface Split {
  /** request sent → job row created (auth, target resolution) */
  request: number;
  /** job created → last task.start sent (job + task rows inserted, scheduling) */
  dispatch: number;
  /** last task sent → last task started on its agent (link, agent decode) */
  toAgent: number;
  /** per task: started → command ended on the agent (journal fsync, spawn, uptime), the slowest host */
  onAgent: number;
  /** the same, the median host */
  onAgentMedian: number;
  /** last command end → job committed as ended (agent outbox fsync, result frame, hub commit, job end) */
  back: number;
  /** job ended → response received by the caller */
  response: number;
}
function split(t0Wall: number, t1Wall: number, j: JobWithTasks): Split {
  const max = (f: (t: TaskView) => number | null) => Math.max(...j.tasks.map((t) => f(t) ?? NaN));
  const lastSent = max((t) => t.sentAt);
  const lastStart = max((t) => t.startedAt);
  const lastEnd = max((t) => t.endedAt);
  return {
    request: j.job.createdAt - t0Wall,
    dispatch: lastSent - j.job.createdAt,
    toAgent: lastStart - lastSent,
    onAgent: max((t) => (t.endedAt ?? NaN) - (t.startedAt ?? NaN)),
    onAgentMedian: median(j.tasks.map((t) => (t.endedAt ?? NaN) - (t.startedAt ?? NaN))),
    back: (j.job.endedAt ?? NaN) - lastEnd,
    response: t1Wall - (j.job.endedAt ?? NaN),
  };
}
function medianSplit(xs: Split[]): Split {
  const keys = ['request', 'dispatch', 'toAgent', 'onAgent', 'onAgentMedian', 'back', 'response'] as const;
  return Object.fromEntries(keys.map((k) => [k, r1(median(xs.map((x) => x[k])))])) as unknown as Split;
}

async function execSync(hub: TestHub, glob: string, n: number): Promise<{ ms: number; split: Split }> {
  const w0 = Date.now();
  const t0 = performance.now();
  const j = await hub.api<JobWithTasks>('POST', '/api/v1/exec', { target: { glob }, command: ['uptime'], mode: 'sync' });
  const ms = performance.now() - t0;
  const w1 = Date.now();
  checkJob(j, n);
  return { ms, split: split(w0, w1, j) };
}

/** Async exec, then the job's WebSocket stream until the job-ended event. */
async function execAsyncStream(hub: TestHub, glob: string, n: number): Promise<number> {
  const t0 = performance.now();
  const r = await hub.api<JobWithTasks>('POST', '/api/v1/exec', { target: { glob }, command: ['uptime'], mode: 'async' });
  const done = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(hub.url.replace(/^http/, 'ws') + `/api/v1/jobs/${r.job.id}/stream`, { headers: { authorization: `Bearer ${hub.token}` } });
    let ended = false;
    ws.on('message', (raw) => {
      const e = JSON.parse(String(raw)) as { type: string; task?: TaskView & { id: string }; job?: JobView };
      if (e.type === 'task' && e.task?.state === 'done') done.add(e.task.id);
      if (e.type === 'job' && e.job && e.job.state !== 'running') {
        ended = true;
        if (e.job.state !== 'succeeded') reject(new Error(`job ${e.job.id} ${e.job.state}`));
        ws.close();
      }
    });
    ws.on('close', () => (ended ? resolve() : reject(new Error('stream closed before the job ended'))));
    ws.on('error', reject);
  });
  const ms = performance.now() - t0;
  if (done.size !== n) throw new Error(`stream: ${done.size} tasks done, want ${n}`);
  return ms;
}

// ------------------------------------------------------------------------------------ simulated agents (child process)

/** A simulated agent that declares `exec` (testkit's simConnect declares metrics only). */
async function connectSim(hubUrl: string, id: SimIdentity, token: string, i: number): Promise<RawAgent> {
  const a = new RawAgent(hubUrl);
  await a.opened;
  const ch = await a.next('challenge', 60_000);
  a.hello({
    protocol: PROTOCOL_VERSION,
    agentVersion: 'sim',
    signature: signPayload(id.privateKeyPem, authPayload(ch.body.nonce, id.agentId ?? id.publicKey)),
    facts: simFacts(`sim-${i + 1}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
    capabilities: ['metrics', 'exec'] as Capability[],
    ...(id.agentId ? { agentId: id.agentId } : { enrollToken: token, publicKey: id.publicKey }),
  });
  const m = await a.nextOf(['welcome', 'refused'], 60_000);
  if (m.type === 'refused') throw new Error(`refused: ${JSON.stringify(m.body)}`);
  id.agentId = (m.body as BodyOf<'welcome'>).agentId;
  return a;
}

async function simChild(hubUrl: string, token: string, count: number): Promise<void> {
  const uptimeOut = execFileSync('uptime').toString();
  const agents: RawAgent[] = [];
  const counters = { starts: 0, acks: 0 };
  await pool(Array.from({ length: count }, (_, i) => i), 64, async (i) => {
    let a: RawAgent | undefined;
    for (let attempt = 0; !a; attempt++) {
      try {
        a = await connectSim(hubUrl, newSimIdentity(), token, i);
      } catch (err) {
        if (attempt >= 10) throw err;
        await sleep(200);
      }
    }
    a.keep = false;
    const agent = a;
    agent.onMessage = (m) => {
      if (m.type === 'task.start') {
        counters.starts++;
        const b = m.body as BodyOf<'task.start'>;
        const startedAt = Date.now();
        agent.sendRaw(encodeFrame('task.accepted', { taskId: b.taskId, pid: 1000 + i, startedAt }));
        const result: TaskResultBody = {
          taskId: b.taskId,
          status: 'exited',
          exitCode: 0,
          signal: null,
          stdout: uptimeOut,
          stderr: '',
          stdoutBytes: Buffer.byteLength(uptimeOut),
          stderrBytes: 0,
          truncated: false,
          startedAt,
          endedAt: Date.now(),
        };
        agent.sendRaw(encodeFrame('task.result', result));
      } else if (m.type === 'task.ack') counters.acks++;
    };
    // Like a real agent: first what it runs and holds (nothing); the hub sends no task before this.
    agent.sendRaw(encodeFrame('task.sync', { running: [], done: [] }));
    agents[i] = agent;
  });
  process.send!({ type: 'ready' });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'counters') process.send!({ type: 'counters', ...counters });
    if (m.type === 'stop') {
      for (const a of agents) a.ws.terminate();
      setTimeout(() => process.exit(0), 100);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ------------------------------------------------------------------------------------ sshd per namespace + ansible

function ensurePackages(): string {
  const have = (f: string) => existsSync(f);
  const missing = [!have('/usr/bin/ansible') && 'ansible', !have('/usr/sbin/sshd') && 'openssh-server'].filter(Boolean) as string[];
  if (missing.length === 0) return 'ansible and openssh-server were already installed';
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')} and not root to install them`);
  log(`apt-get install -y ${missing.join(' ')}`);
  // /usr/sbin/policy-rc.d (where present) keeps the package from starting a system sshd.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...missing], { env, stdio: 'inherit' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { env, stdio: 'inherit' });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...missing], { env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
  return `installed now by this bench: ${missing.join(', ')} (apt-get install -y)`;
}

interface SshFleet {
  dir: string;
  inventory: string;
  sshdPids: number[];
  stop(): void;
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function startSshFleet(hosts: { ns: string; address: string; hostname: string }[], onExit: typeof Cleanup.onExit): Promise<SshFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-ssh-'));
  const procs: ChildProcess[] = [];
  const stopSync = () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // ControlPersist masters of ansible's ssh (detached, named by their control socket in our dir).
    const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout ?? '';
    for (const line of ps.split('\n')) {
      const m = /^\s*(\d+)\s+(.*)$/.exec(line);
      if (m && m[2]!.startsWith('ssh') && m[2]!.includes(dir) && Number(m[1]) !== process.pid) {
        try {
          process.kill(Number(m[1]), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const unregister = onExit(stopSync);
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation directory
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tether-bench', '-f', join(dir, 'client_key')]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
    for (const h of hosts) {
      const d = join(dir, h.hostname);
      mkdirSync(d);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'host_key')]);
      writeFileSync(
        join(d, 'sshd_config'),
        [
          `ListenAddress ${h.address}`,
          'Port 22',
          `HostKey ${join(d, 'host_key')}`,
          `PidFile ${join(d, 'sshd.pid')}`,
          `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'StrictModes no',
          'UsePAM no',
          'UseDNS no',
          'MaxStartups 100:30:200',
          'MaxSessions 100',
          'Subsystem sftp /usr/lib/openssh/sftp-server',
          '',
        ].join('\n'),
      );
      const p = spawn('ip', ['netns', 'exec', h.ns, '/usr/sbin/sshd', '-D', '-f', join(d, 'sshd_config'), '-E', join(d, 'sshd.log')], { stdio: 'ignore' });
      procs.push(p);
    }
    for (const h of hosts) {
      const deadline = Date.now() + 15_000;
      while (!(await tcpOpen(h.address, 22))) {
        if (Date.now() > deadline) throw new Error(`sshd on ${h.address} did not come up: ${readFileSync(join(dir, h.hostname, 'sshd.log'), 'utf8').slice(-500)}`);
        await sleep(50);
      }
    }
    const inventory = join(dir, 'inventory.ini');
    writeFileSync(
      inventory,
      [
        '[fleet]',
        ...hosts.map((h) => `${h.hostname} ansible_host=${h.address}`),
        '',
        '[fleet:vars]',
        'ansible_user=root',
        `ansible_ssh_private_key_file=${join(dir, 'client_key')}`,
        'ansible_python_interpreter=/usr/bin/python3',
        '',
      ].join('\n'),
    );
    mkdirSync(join(dir, 'cp'));
    mkdirSync(join(dir, 'local-tmp'));
    return {
      dir,
      inventory,
      sshdPids: procs.map((p) => p.pid!),
      stop: () => {
        stopSync();
        unregister();
      },
    };
  } catch (err) {
    stopSync();
    unregister();
    throw err;
  }
}

function ansibleEnv(f: SshFleet, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ANSIBLE_CONFIG: join(f.dir, 'no-ansible.cfg'), // no ansible.cfg from the current directory or ~
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_SSH_CONTROL_PATH_DIR: join(f.dir, 'cp'),
    ANSIBLE_LOCAL_TEMP: join(f.dir, 'local-tmp'),
    ANSIBLE_REMOTE_TEMP: join(f.dir, 'remote-tmp'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null',
    ...extra,
  };
}

async function ansibleOnce(f: SshFleet, n: number, env: NodeJS.ProcessEnv): Promise<{ ms: number; cpuSec: number }> {
  const c0 = childCpu() + treeCpu(f.sshdPids, f.dir);
  const r = await run('/usr/bin/ansible', ['all', '-i', f.inventory, '-m', 'command', '-a', 'uptime', '-f', String(n)], { env, cwd: f.dir });
  const cpu = childCpu() + treeCpu(f.sshdPids, f.dir) - c0;
  const changed = (r.stdout.match(/\| CHANGED \| rc=0 >>/g) ?? []).length;
  if (r.code !== 0 || changed !== n) throw new Error(`ansible: exit ${r.code}, ${changed}/${n} hosts ok\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { ms: r.ms, cpuSec: cpu };
}
/** cutime + cstime of this process: CPU of the children it has reaped (ansible and what it reaped). */
function childCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const r = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(r[13]) + Number(r[14])) / 100;
}

// ------------------------------------------------------------------------------------ main

interface Result {
  date: string;
  machine: string;
  cores: number;
  loadBefore: number[];
  loadDuring: { mean: number; max: number };
  packages?: string;
  hosts: number;
  real?: {
    api: Stats;
    oneHost: Stats;
    apiAsyncStream: Stats;
    cli: Stats;
    cliStartupMs: number;
    cliDuplicateLines: number;
    split: Split;
    cpuSecPerFanout: { hub: number; agents: number };
    stateFs: string;
    fdatasyncMs: number;
  };
  ansible?: {
    default: Stats;
    controlPersistOff: Stats;
    pipelining: Stats;
    cpuSecPerFanout: number;
    version: string;
  };
  sims?: { agents: number; connectSec: number; api: Stats; split: Split; cpuSecPerFanout: { hub: number; simulator: number }; acks: number };
  ratio?: { ansibleOverTetherApi: number; ansibleOverTetherCli: number; target: number };
}

async function realAndAnsible(res: Result): Promise<void> {
  const { startNetnsFleet } = (await import(join(repo, 'test/dist/fleet/netns.js'))) as typeof Netns;
  const { onExit } = (await import(join(repo, 'test/dist/fleet/cleanup.js'))) as typeof Cleanup;
  const hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' }, ...hubNodeArgs });
  const cfgDir = mkdtempSync(join(tmpdir(), 'tether-bench-cfg-'));
  let fleet: Netns.NetnsFleet | undefined;
  let ssh: SshFleet | undefined;
  try {
    const config = writeAgentConfig(cfgDir, { capabilities: ['metrics', 'exec'] });
    log(`starting ${N} namespace agents`);
    fleet = await startNetnsFleet({ count: N, hubPort: hub.port, token: await hub.enrollToken({ singleUse: false }), agentExtraArgs: ['--config', config], agentEnv: { TETHER_LOG_LEVEL: 'info' } });
    const deadline = Date.now() + 90_000;
    while ((await hub.hosts('?status=online')).total < N) {
      if (Date.now() > deadline) throw new Error(`only ${(await hub.hosts('?status=online')).total}/${N} agents online`);
      await sleep(200);
    }
    await sleep(2000); // let the agents' first collections settle
    const agentPids = fleet.hosts.map((h) => h.child!.pid!);

    if (ONLY.has('real')) {
      const fsync = fdatasyncMs();
      log('Tether API rounds');
      await execSync(hub, 'ns-*', N); // warm-up (also proves every agent has synced)
      await execAsyncStream(hub, 'ns-*', N);
      const api: number[] = [];
      const splits: Split[] = [];
      const hubCpu: number[] = [];
      const agentCpu: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const h0 = cpuAll(hub.proc.pid);
        const a0 = cpuOf(agentPids);
        const r = await execSync(hub, 'ns-*', N);
        hubCpu.push(cpuAll(hub.proc.pid) - h0);
        agentCpu.push(cpuOf(agentPids) - a0);
        api.push(r.ms);
        splits.push(r.split);
        await sleep(200);
      }
      const one: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        one.push((await execSync(hub, 'ns-1', 1)).ms);
        await sleep(100);
      }
      const stream: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        stream.push(await execAsyncStream(hub, 'ns-*', N));
        await sleep(200);
      }
      log('Tether CLI rounds');
      const cliEnv = { ...process.env, TETHER_HUB: hub.url, TETHER_SESSION: hub.token, NO_COLOR: '1' };
      const startup: number[] = [];
      for (let i = 0; i < 3; i++) startup.push((await run(process.execPath, [CLI, '--version'], { env: cliEnv })).ms);
      const cli: number[] = [];
      let cliDuplicates = 0;
      for (let i = 0; i <= CLI_ROUNDS; i++) {
        const r = await run(process.execPath, [CLI, 'exec', '-t', 'ns-*', '--', 'uptime'], { env: cliEnv });
        const lines = [...r.stdout.matchAll(/^(\S+)\s*\|.*load average/gm)].map((m) => m[1]!);
        const hosts = new Set(lines);
        if (r.code !== 0 || hosts.size !== N) throw new Error(`tether exec: exit ${r.code}, ${hosts.size}/${N} hosts answered\n${r.stdout.slice(-1000)}\n${r.stderr.slice(-1000)}`);
        // A host's output printed twice (seen: the job stream's replay can carry a task's output again after its result).
        cliDuplicates += lines.length - hosts.size;
        if (i > 0) cli.push(r.ms); // the first is a warm-up (page cache)
        await sleep(200);
      }
      res.real = {
        api: stats(api),
        oneHost: stats(one),
        apiAsyncStream: stats(stream),
        cli: stats(cli),
        cliStartupMs: r1(median(startup)),
        cliDuplicateLines: cliDuplicates,
        split: medianSplit(splits),
        cpuSecPerFanout: { hub: r2(median(hubCpu)), agents: r2(median(agentCpu)) },
        stateFs: fsync.fs,
        fdatasyncMs: fsync.medianMs,
      };
      log(`Tether API median ${res.real.api.medianMs} ms, CLI median ${res.real.cli.medianMs} ms`);
    }

    if (ONLY.has('ansible')) {
      res.packages = ensurePackages();
      log('starting an sshd in every namespace');
      ssh = await startSshFleet(fleet.hosts, onExit);
      const version = (await run('/usr/bin/ansible', ['--version'], { env: ansibleEnv(ssh) })).stdout.split('\n')[0] ?? '?';
      log(`Ansible rounds (${version})`);
      const dflt: number[] = [];
      const cpu: number[] = [];
      await ansibleOnce(ssh, N, ansibleEnv(ssh)); // warm-up: opens the ControlPersist connections
      for (let i = 0; i < ANSIBLE_ROUNDS; i++) {
        const r = await ansibleOnce(ssh, N, ansibleEnv(ssh));
        dflt.push(r.ms);
        cpu.push(r.cpuSec);
      }
      const off: number[] = [];
      const offEnv = ansibleEnv(ssh, { ANSIBLE_SSH_ARGS: '-o ControlMaster=no -o UserKnownHostsFile=/dev/null' });
      for (let i = 0; i < Math.max(1, Math.ceil(ANSIBLE_ROUNDS / 2)); i++) off.push((await ansibleOnce(ssh, N, offEnv)).ms);
      const pipe: number[] = [];
      const pipeEnv = ansibleEnv(ssh, { ANSIBLE_PIPELINING: 'True' });
      for (let i = 0; i < Math.max(1, Math.ceil(ANSIBLE_ROUNDS / 2)); i++) pipe.push((await ansibleOnce(ssh, N, pipeEnv)).ms);
      res.ansible = { default: stats(dflt), controlPersistOff: stats(off), pipelining: stats(pipe), cpuSecPerFanout: r2(median(cpu)), version };
      log(`Ansible median ${res.ansible.default.medianMs} ms`);
    }
  } finally {
    ssh?.stop();
    await fleet?.stop();
    await hub.cleanup();
    rmSync(cfgDir, { recursive: true, force: true });
  }
}

async function simulated(res: Result): Promise<void> {
  const hub = await TestHub.start({ heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' }, ...hubNodeArgs });
  let child: ChildProcess | undefined;
  try {
    const token = await hub.enrollToken({ singleUse: false, expiresInSec: 3600 });
    log(`connecting ${SIMS} simulated agents (child process)`);
    const t0 = performance.now();
    child = fork(fileURLToPath(import.meta.url), ['--sim-child', hub.url, token, String(SIMS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const c = child;
    const fromChild = <T>(type: string) =>
      new Promise<T>((resolve, reject) => {
        const on = (m: { type: string }) => {
          if (m.type === type) {
            c.off('message', on);
            resolve(m as T);
          }
        };
        c.on('message', on);
        c.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
      });
    await fromChild('ready');
    const connectSec = (performance.now() - t0) / 1000;
    const online = (await hub.hosts('?status=online&limit=1')).total;
    if (online !== SIMS) throw new Error(`${online}/${SIMS} simulated agents online`);
    await sleep(1000);
    await execSync(hub, 'sim-*', SIMS); // warm-up
    const api: number[] = [];
    const splits: Split[] = [];
    const hubCpu: number[] = [];
    const simCpu: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const h0 = cpuAll(hub.proc.pid);
      const s0 = cpuAll(c.pid!);
      const r = await execSync(hub, 'sim-*', SIMS);
      hubCpu.push(cpuAll(hub.proc.pid) - h0);
      simCpu.push(cpuAll(c.pid!) - s0);
      api.push(r.ms);
      splits.push(r.split);
      await sleep(300);
    }
    c.send({ type: 'counters' });
    const counters = await fromChild<{ starts: number; acks: number }>('counters');
    res.sims = { agents: SIMS, connectSec: r1(connectSec), api: stats(api), split: medianSplit(splits), cpuSecPerFanout: { hub: r2(median(hubCpu)), simulator: r2(median(simCpu)) }, acks: counters.acks };
    if (counters.starts !== (ROUNDS + 1) * SIMS) throw new Error(`simulator saw ${counters.starts} task.start, want ${(ROUNDS + 1) * SIMS} (a task sent twice?)`);
    log(`${SIMS} simulated median ${res.sims.api.medianMs} ms`);
  } finally {
    child?.send({ type: 'stop' });
    await sleep(300);
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await hub.cleanup();
  }
}

function markdown(r: Result): string {
  const s = (x: Stats | undefined) => (x ? `${x.medianMs} / ${x.p95Ms} / ${x.minMs} ms` : '—');
  const lines = [
    `## ${[r.real || r.ansible ? `${r.hosts} hosts` : '', r.sims ? `${r.sims.agents} simulated agents` : ''].filter(Boolean).join(' and ')} — ${r.date}`,
    ``,
    `Machine: ${r.machine}. Load average (1 min) before the bench ${r.loadBefore.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min; other work on the machine); while it ran mean ${r.loadDuring.mean}, max ${r.loadDuring.max}. Hub on SQLite, agents with capabilities metrics + exec.${r.packages ? ` Packages: ${r.packages}.` : ''}`,
    ``,
    `| fan-out of \`uptime\`, until every result is back | median / p95 / min | rounds |`,
    `|---|---|---|`,
  ];
  if (r.real) {
    lines.push(`| Tether, ${r.hosts} real agents, \`POST /api/v1/exec\` mode sync (response = all results committed) | ${s(r.real.api)} | ${r.real.api.n} |`);
    lines.push(`| Tether, one real agent (ns-1), the same call: the floor of one round trip | ${s(r.real.oneHost)} | ${r.real.oneHost.n} |`);
    lines.push(`| Tether, ${r.hosts} real agents, async + job stream (WebSocket) until the job ends | ${s(r.real.apiAsyncStream)} | ${r.real.apiAsyncStream.n} |`);
    lines.push(`| Tether CLI, \`tether exec -t 'ns-*' -- uptime\`, wall time with Node start-up (\`tether --version\` alone: ${r.real.cliStartupMs} ms) | ${s(r.real.cli)} | ${r.real.cli.n} |`);
  }
  if (r.real?.cliDuplicateLines) lines.push(`| (the CLI printed a host's output line twice ${r.real.cliDuplicateLines} time(s) over ${r.real.cli.n + 1} runs: a bug, reported) | | |`);
  if (r.sims) lines.push(`| Tether, ${r.sims.agents} simulated agents (one child process), sync exec | ${s(r.sims.api)} | ${r.sims.api.n} |`);
  if (r.ansible) {
    lines.push(`| Ansible ad-hoc, \`ansible all -m command -a uptime -f ${r.hosts}\`, defaults (ControlPersist 60 s: warm connections) | ${s(r.ansible.default)} | ${r.ansible.default.n} |`);
    lines.push(`| Ansible, ControlPersist off (a new SSH connection per host) | ${s(r.ansible.controlPersistOff)} | ${r.ansible.controlPersistOff.n} |`);
    lines.push(`| Ansible, pipelining on (fewer SSH round trips; not the default) | ${s(r.ansible.pipelining)} | ${r.ansible.pipelining.n} |`);
  }
  lines.push('');
  if (r.ratio) {
    const ok = r.ratio.ansibleOverTetherApi >= r.ratio.target;
    lines.push(`**Ansible ÷ Tether (medians): ${r.ratio.ansibleOverTetherApi}× through the API, ${r.ratio.ansibleOverTetherCli}× through the CLI** (target ≥ ${r.ratio.target}× : ${ok ? 'met' : 'missed'} through the API, ${r.ratio.ansibleOverTetherCli >= r.ratio.target ? 'met' : 'missed'} through the CLI).`);
    lines.push('');
  }
  if (r.real) {
    const p = r.real.split;
    lines.push(`Where a ${r.hosts}-host round goes (medians, ms, from the task timestamps): request → job created ${p.request}; job created → last task.start sent ${p.dispatch} (job and task rows inserted); → last agent started it ${p.toAgent}; on the agent, start → command ended ${p.onAgent} on the slowest host, ${p.onAgentMedian} on the median one (journal fdatasync, spawn, \`uptime\`); last command end → job committed as ended ${p.back} (outbox fdatasync, result frame, hub commit); → response ${p.response}. CPU per fan-out: hub ${r.real.cpuSecPerFanout.hub} s, ${r.hosts} agents together ${r.real.cpuSecPerFanout.agents} s (children included). Agent state on ${r.real.stateFs}; one small write + fdatasync there takes ${r.real.fdatasyncMs} ms (an agent does two per task: the journal before the start, the outbox file before the result).`);
    lines.push('');
  }
  if (r.sims) {
    const p = r.sims.split;
    lines.push(`${r.sims.agents} simulated agents: connected in ${r.sims.connectSec} s; per round request ${p.request}, dispatch ${p.dispatch}, → last started ${p.toAgent}, last result → job ended ${p.back}, → response ${p.response} ms. CPU per fan-out: hub ${r.sims.cpuSecPerFanout.hub} s, simulator ${r.sims.cpuSecPerFanout.simulator} s. The simulator spawns no process and writes nothing to disk, and shares the 2 cores with the hub.`);
    lines.push('');
  }
  if (r.ansible) {
    lines.push(`Ansible: ${r.ansible.version}; one sshd per namespace (own host key, own address), key auth as root, host key checking off, python3 given (no interpreter discovery). CPU per default fan-out (ansible, its workers and ssh, the sshds): ${r.ansible.cpuSecPerFanout} s.`);
    lines.push('');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--sim-child') return simChild(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
  if (process.getuid?.() !== 0 && (ONLY.has('real') || ONLY.has('ansible'))) throw new Error('namespace hosts need root (or run with --only sims)');
  const res: Result = { date: new Date().toISOString(), machine: machine(), cores: cpus().length, loadBefore: loadavg().map(r2), loadDuring: { mean: NaN, max: NaN }, hosts: N };
  if (ONLY.has('real') || ONLY.has('ansible')) await realAndAnsible(res);
  if (ONLY.has('sims')) await simulated(res);
  res.loadDuring = { mean: r2(loadSamples.reduce((a, b) => a + b, 0) / Math.max(1, loadSamples.length)), max: r2(Math.max(...loadSamples)) };
  if (res.real && res.ansible) {
    res.ratio = { ansibleOverTetherApi: r1(res.ansible.default.medianMs / res.real.api.medianMs), ansibleOverTetherCli: r1(res.ansible.default.medianMs / res.real.cli.medianMs), target: 50 };
  }
  const md = markdown(res);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'exec-fanout.json'), JSON.stringify(res, null, 2) + '\n');
  appendFileSync(join(RESULTS, 'exec-fanout.md'), md + '\n');
  process.stdout.write(md + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
