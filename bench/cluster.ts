/**
 * Several hubs on one PostgreSQL and the machine's NATS, against one hub alone, on the same cores:
 *
 *   1. ingest: N simulated agents (real protocol, real Ed25519 handshakes) send a real usage sample
 *      of this machine every 5 s — to one hub alone (PostgreSQL, no NATS), then spread evenly over
 *      three clustered hubs. Reported: report → ack round trip p50/p99, and the CPU per report of
 *      the hubs (and of NATS and PostgreSQL); the cluster's efficiency is the one hub's cost per
 *      report over the three hubs' (target ≥ 0.8);
 *   2. fan-out: SIMS simulated agents over the three hubs answer task.start like agents; one
 *      `exec uptime` through hub A to all of them, until every result is back (target < 1.5 s);
 *   3. failover: one hub is killed (SIGKILL) mid-job; its simulated agents, told the other hubs by
 *      `cluster.hubs`, reconnect to one of them at random after 0–1 s as the agent does. Reported:
 *      kill → each agent welcomed elsewhere (p50/p99/max), the job's tasks lost or run twice.
 *
 * Usage: npm run build && node bench/dist/cluster.js [--agents 3000] [--seconds 30] [--sims 1000] [--only ingest,fanout,failover]
 * Writes bench/results/cluster.md (appended) and bench/results/cluster.json.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { encodeFrame, newMessageId, type BodyOf } from '@tether/protocol';
import { RawAgent, TestHub, newSimIdentity, pgSchema, simConnect, simFacts, type SimIdentity } from '@tether/testkit';
import { realUsage } from './lib/sample.js';
import { cpuSec, machine, percentile, pool, record } from './lib/util.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const AGENTS = flag('agents', 3000);
const SECONDS = flag('seconds', 30);
const SIMS = flag('sims', 1000);
const onlyArg = process.argv.indexOf('--only');
const ONLY = new Set(onlyArg > 0 ? process.argv[onlyArg + 1]!.split(',') : ['ingest', 'fanout', 'failover']);
const NATS = process.env.TETHER_TEST_NATS ?? 'nats://127.0.0.1:4222';
const INTERVAL = 5000;
const WARMUP_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** utime + stime + cutime + cstime: a PostgreSQL backend that ends is counted in its parent's. */
function cpuAll(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const r = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(r[11]) + Number(r[12]) + Number(r[13]) + Number(r[14])) / 100;
}

/** CPU seconds of processes found by their command line (nats-server; postgres and its backends). */
function cpuOfCommand(re: RegExp): number {
  let s = 0;
  for (const pid of readdirPids()) {
    try {
      if (re.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))) s += cpuAll(pid);
    } catch {
      /* gone */
    }
  }
  return s;
}
function readdirPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

interface Shared {
  url: string;
  key: string;
  prefix: string;
}
async function clusterHubs(n: number, shared: Shared): Promise<TestHub[]> {
  const start = () => TestHub.start({ db: 'postgres', dbUrl: shared.url, secretKeyHex: shared.key, heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' }, extraArgs: ['--nats', NATS, '--cluster-prefix', shared.prefix] });
  const first = await start();
  const rest = await Promise.all(Array.from({ length: n - 1 }, start));
  return [first, ...rest];
}

/** Connects `count` simulated agents spread round robin over `hubs`; returns them with their identities and hub index. */
async function connectSims(hubs: TestHub[], count: number, caps: ('metrics' | 'exec')[] = ['metrics']): Promise<{ a: RawAgent; id: SimIdentity; hub: number }[]> {
  const token = await hubs[0]!.enrollToken({ expiresInSec: 3600 });
  const out: { a: RawAgent; id: SimIdentity; hub: number }[] = [];
  await pool(
    Array.from({ length: count }, (_, i) => i),
    128,
    async (i) => {
      const id = newSimIdentity();
      const hub = i % hubs.length;
      const a = await simConnect(hubs[hub]!.url, id, { token, facts: simFacts(`sim-${i}`), capabilities: caps });
      a.keep = false;
      out[i] = { a, id, hub };
    },
  );
  return out;
}

// ------------------------------------------------------------------------------------ 1. ingest

interface IngestResult {
  hubs: number;
  agents: number;
  reports: number;
  acked: number;
  rttP50: number;
  rttP99: number;
  /** CPU ms per acknowledged report: hubs, NATS, PostgreSQL */
  cpuMsPerReport: { hubs: number; nats: number; postgres: number };
  /** each hub's CPU per report of the whole fleet, and the leases it held */
  perHub: { cpuMsPerReport: number; leases: string[] }[];
}

async function ingest(hubs: TestHub[], label: string): Promise<IngestResult> {
  const sample = await realUsage();
  const sims = await connectSims(hubs, AGENTS);
  const pending = new Map<string, number>();
  const rtt: number[] = [];
  let measuring = false;
  let acked = 0;
  let sent = 0;
  for (const s of sims) {
    s.a.onMessage = (m) => {
      if (m.type !== 'ack' || !m.re) return;
      const t = pending.get(m.re);
      if (t === undefined) return;
      pending.delete(m.re);
      if (measuring) {
        rtt.push(performance.now() - t);
        acked++;
      }
    };
  }
  const timers: NodeJS.Timeout[] = [];
  sims.forEach((s, i) => {
    const send = () => {
      const id = newMessageId();
      pending.set(id, performance.now());
      if (measuring) sent++;
      s.a.sendRaw(encodeFrame('report.usage', { ...sample, ts: Date.now() }, { id }));
    };
    timers.push(
      setTimeout(() => {
        send();
        timers.push(setInterval(send, INTERVAL));
      }, (i * INTERVAL) / sims.length),
    );
  });
  await sleep(WARMUP_MS);
  const each0 = hubs.map((h) => cpuSec(h.proc.pid!));
  const hubCpu0 = each0.reduce((x, y) => x + y, 0);
  const nats0 = cpuOfCommand(/nats-server/);
  const pg0 = cpuOfCommand(/^postgres/);
  measuring = true;
  await sleep(SECONDS * 1000);
  measuring = false;
  const each = hubs.map((h, i) => cpuSec(h.proc.pid!) - each0[i]!);
  const hubCpu = hubs.reduce((s, h) => s + cpuSec(h.proc.pid!), 0) - hubCpu0;
  const leases = await Promise.all(hubs.map(async (h) => ((await h.api('GET', '/api/v1/health')).cluster?.leases ?? []) as string[]));
  const nats = cpuOfCommand(/nats-server/) - nats0;
  const pg = cpuOfCommand(/^postgres/) - pg0;
  for (const t of timers) clearInterval(t);
  await sleep(500);
  for (const s of sims) s.a.close();
  rtt.sort((x, y) => x - y);
  const r: IngestResult = {
    hubs: hubs.length,
    agents: AGENTS,
    reports: sent,
    acked,
    rttP50: +percentile(rtt, 50).toFixed(1),
    rttP99: +percentile(rtt, 99).toFixed(1),
    perHub: each.map((c, i) => ({ cpuMsPerReport: +((c * 1000) / Math.max(1, acked)).toFixed(3), leases: hubs.length > 1 ? leases[i]! : [] })),
    cpuMsPerReport: { hubs: +((hubCpu * 1000) / Math.max(1, acked)).toFixed(3), nats: +((nats * 1000) / Math.max(1, acked)).toFixed(3), postgres: +((pg * 1000) / Math.max(1, acked)).toFixed(3) },
  };
  console.log(label, JSON.stringify(r));
  return r;
}

// ------------------------------------------------------------------------------------ 2 and 3. tasks

/**
 * What a simulated agent remembers across connections, as the agent's ledger does: tasks running,
 * results not yet acknowledged. Each id is run once, whatever the hub sends.
 */
interface SimTasks {
  conn: RawAgent;
  running: Set<string>;
  unacked: Map<string, BodyOf<'task.result'>>;
}

/** Answers task.start like an agent (accepted, then a result with uptime's output after `delayMs`); counts starts per task. */
function answerTasks(st: SimTasks, a: RawAgent, starts: Map<string, number>, delayMs = 0): void {
  st.conn = a;
  const sync = () => {
    a.sendRaw(encodeFrame('task.sync', { running: [...st.running], done: [...st.unacked.keys()] }));
    for (const r of st.unacked.values()) a.sendRaw(encodeFrame('task.result', r));
  };
  a.onMessage = (m) => {
    if (m.type === 'task.resync') return sync();
    if (m.type === 'task.ack') return void st.unacked.delete((m.body as BodyOf<'task.ack'>).taskId);
    if (m.type !== 'task.start') return;
    const b = m.body as BodyOf<'task.start'>;
    starts.set(b.taskId, (starts.get(b.taskId) ?? 0) + 1);
    if (st.running.has(b.taskId) || st.unacked.has(b.taskId) || (starts.get(b.taskId) ?? 0) > 1) return;
    st.running.add(b.taskId);
    const startedAt = Date.now();
    a.sendRaw(encodeFrame('task.accepted', { taskId: b.taskId, pid: 4242, startedAt }));
    const finish = () => {
      const r = { taskId: b.taskId, status: 'exited', exitCode: 0, signal: null, stdout: ' 10:00:00 up 1 day,  load average: 0.00, 0.00, 0.00\n', stderr: '', stdoutBytes: 60, stderrBytes: 0, truncated: false, startedAt, endedAt: Date.now() } as BodyOf<'task.result'>;
      st.running.delete(b.taskId);
      st.unacked.set(b.taskId, r);
      // Sent on the connection the agent has now (it may have moved to another hub meanwhile).
      if (st.conn.ws.readyState === st.conn.ws.OPEN) st.conn.sendRaw(encodeFrame('task.result', r));
    };
    if (delayMs) setTimeout(finish, delayMs);
    else finish();
  };
  sync();
}
const simTasks = (a: RawAgent): SimTasks => ({ conn: a, running: new Set(), unacked: new Map() });

async function fanout(hubs: TestHub[]): Promise<{ sims: number; rounds: number[]; p50: number; max: number; startsTwice: number }> {
  const sims = await connectSims(hubs, SIMS, ['metrics', 'exec']);
  const starts = new Map<string, number>();
  for (const s of sims) answerTasks(simTasks(s.a), s.a, starts);
  await sleep(3000);
  const ids = sims.map((s) => s.id.agentId!);
  const rounds: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    const res = await hubs[0]!.api('POST', '/api/v1/exec', { target: { hosts: ids }, command: ['uptime'], wait: 60 });
    const ms = performance.now() - t0;
    if (res.job.state !== 'succeeded') throw new Error(`fan-out round ${r}: job ${res.job.state}`);
    if (r > 0) rounds.push(+ms.toFixed(0)); // the first warms caches
  }
  for (const s of sims) s.a.close();
  const sorted = [...rounds].sort((x, y) => x - y);
  const r = { sims: SIMS, rounds, p50: percentile(sorted, 50), max: sorted.at(-1)!, startsTwice: [...starts.values()].filter((n) => n > 1).length };
  console.log('fanout', JSON.stringify(r));
  return r;
}

async function failover(hubs: TestHub[]): Promise<{ moved: number; p50: number; p99: number; max: number; tasks: number; lost: number; twice: number; jobState: string }> {
  const sims = await connectSims(hubs, SIMS, ['metrics', 'exec']);
  const starts = new Map<string, number>();
  const state = sims.map((s) => simTasks(s.a));
  sims.forEach((s, i) => answerTasks(state[i]!, s.a, starts, 3000));
  await sleep(3000);
  const urls = hubs.map((h) => h.url);
  const victim = 2;
  const welcomedAfter: number[] = [];
  let killedAt = 0;
  for (const [i, s] of sims.entries()) {
    if (s.hub !== victim) continue;
    s.a.ws.on('close', () => {
      const others = urls.filter((_, i) => i !== victim);
      setTimeout(async () => {
        for (let attempt = 0; attempt < 5; attempt++) {
          try {
            const a = await simConnect(others[Math.floor(Math.random() * others.length)]!, s.id, { facts: simFacts(`moved-${s.id.agentId}`), capabilities: ['metrics', 'exec'] });
            a.keep = false;
            welcomedAfter.push(performance.now() - killedAt);
            answerTasks(state[i]!, a, starts, 3000);
            s.a = a;
            return;
          } catch {
            await sleep(500);
          }
        }
      }, Math.random() * 1000);
    });
  }
  const ids = sims.map((s) => s.id.agentId!);
  const job = await hubs[0]!.api('POST', '/api/v1/exec', { target: { hosts: ids }, command: ['uptime'], mode: 'async' });
  await sleep(1000);
  killedAt = performance.now();
  await hubs[victim]!.kill('SIGKILL');
  const deadline = performance.now() + 60_000;
  let final: any;
  while (performance.now() < deadline) {
    final = await hubs[0]!.api('GET', `/api/v1/jobs/${job.job.id}`);
    if (final.job.state !== 'running') break;
    await sleep(500);
  }
  for (const s of sims) s.a.close();
  const sorted = [...welcomedAfter].sort((x, y) => x - y);
  const tasks = final.tasks.length;
  const lost = final.tasks.filter((t: any) => t.status !== 'exited').length;
  const r = { moved: welcomedAfter.length, p50: +percentile(sorted, 50).toFixed(0), p99: +percentile(sorted, 99).toFixed(0), max: +(sorted.at(-1) ?? 0).toFixed(0), tasks, lost, twice: [...starts.values()].filter((n) => n > 1).length, jobState: final.job.state };
  console.log('failover', JSON.stringify(r));
  return r;
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { at: new Date().toISOString(), machine: machine(), agents: AGENTS, seconds: SECONDS, sims: SIMS };
  const lines: string[] = [`## Cluster: three hubs on PostgreSQL + NATS against one hub — ${out.at}`, '', `Machine: ${machine()}. Hubs, NATS, PostgreSQL and the simulated agents share the machine's cores.`, ''];
  if (ONLY.has('ingest')) {
    const one = await TestHub.start({ db: 'postgres', heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' } });
    let single: IngestResult;
    try {
      single = await ingest([one], 'single');
    } finally {
      await one.cleanup();
    }
    const db = pgSchema();
    const hubs = await clusterHubs(3, { url: db.url, key: randomBytes(32).toString('hex'), prefix: `b${randomBytes(4).toString('hex')}` });
    let three: IngestResult;
    try {
      three = await ingest(hubs, 'cluster');
    } finally {
      for (const h of hubs) await h.cleanup();
      await db.drop();
    }
    const eff = single.cpuMsPerReport.hubs / three.cpuMsPerReport.hubs;
    out.ingest = { single, three, efficiency: +eff.toFixed(2) };
    lines.push(
      `### Ingest: ${AGENTS} agents every 5 s, ${SECONDS} s measured after 10 s`,
      '',
      '| | one hub (PostgreSQL, no NATS) | three hubs (PostgreSQL + NATS) |',
      '|---|---|---|',
      `| reports acknowledged / sent | ${single.acked} / ${single.reports} | ${three.acked} / ${three.reports} |`,
      `| report → ack p50 / p99 | ${single.rttP50} / ${single.rttP99} ms | ${three.rttP50} / ${three.rttP99} ms |`,
      `| hub CPU per report | ${single.cpuMsPerReport.hubs} ms | ${three.cpuMsPerReport.hubs} ms (three hubs together) |`,
      `| NATS CPU per report | ${single.cpuMsPerReport.nats} ms | ${three.cpuMsPerReport.nats} ms |`,
      `| PostgreSQL CPU per report | ${single.cpuMsPerReport.postgres} ms | ${three.cpuMsPerReport.postgres} ms |`,
      `| each hub's CPU per report of the fleet (leases held) | — | ${three.perHub.map((h) => `${h.cpuMsPerReport} ms (${h.leases.join(', ') || 'none'})`).join('; ')} |`,
      '',
      `Cluster efficiency (one hub's CPU per report / three hubs' together): **${eff.toFixed(2)}** (target ≥ 0.8).`,
      '',
    );
  }
  if (ONLY.has('fanout') || ONLY.has('failover')) {
    const db = pgSchema();
    const hubs = await clusterHubs(3, { url: db.url, key: randomBytes(32).toString('hex'), prefix: `b${randomBytes(4).toString('hex')}` });
    try {
      if (ONLY.has('fanout')) {
        const f = await fanout(hubs);
        out.fanout = f;
        lines.push(`### Fan-out: \`exec uptime\` through hub A to ${f.sims} simulated agents spread over three hubs`, '', `All results back: p50 **${f.p50} ms**, max ${f.max} ms over ${f.rounds.length} rounds (${f.rounds.join(', ')} ms; target < 1.5 s). Tasks started twice: ${f.startsTwice}.`, '');
      }
      if (ONLY.has('failover')) {
        const f = await failover(hubs);
        out.failover = f;
        lines.push(
          `### Failover: a hub killed with SIGKILL mid-job`,
          '',
          `${f.moved} agents of the killed hub welcomed by another: p50 ${f.p50} ms, **p99 ${f.p99} ms**, max ${f.max} ms after the kill (target p99 < 5 s; the simulated agents wait 0–1 s as the agent does). The job over all ${f.tasks} agents ended ${f.jobState}: tasks lost ${f.lost}, started twice ${f.twice}.`,
          '',
        );
      }
    } finally {
      for (const h of hubs) await h.cleanup().catch(() => {});
      await db.drop();
    }
  }
  record('cluster', lines.join('\n'), out);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
