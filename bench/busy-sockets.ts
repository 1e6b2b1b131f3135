// The socket collectors (processes, connections) on a busy host: 100,000 TCP sockets.
//
//   npm run build && node bench/dist/busy-sockets.js      (writes bench/results/busy-sockets.md)
//   BENCH_SOCKETS=20000                                   (another count)
//   BENCH_BASELINE=/old/checkout/packages/agent/dist       (the same measurement on another build)
//
// Holder processes open loopback connections until the host holds BENCH_SOCKETS sockets (each
// holder as many as its open-file limit allows; one of them closes and reopens 20 connections a
// second, so the owner map meets new sockets as on a live server). Then a child process run as
// `tether agent` runs (without TurboFan) collects processes and connections together 10 times, as
// the agent's scheduler does every 30 s, and reports per collection: CPU (user + system), wall
// time, and the longest the event loop went without a turn (a 1 ms interval timer's largest gap),
// then its RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Collectors from '../packages/agent/dist/src/collectors/index.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist
const repo = join(here, '..', '..');
const RUNS = 10;

interface Row {
  cpuMs: number;
  wallMs: number;
  maxGapMs: number;
  /** TCP sockets the connections report counted */
  sockets: number;
  /** sockets it listed, and how many of those with their pid */
  reported: number;
  owned: number;
}

// ---------- child mode: the agent's two socket collectors, measured ----------
if (process.argv[2] === '--collect') {
  const dist = process.argv[3]!;
  const { createCollectors } = (await import(join(dist, 'src/collectors/index.js'))) as typeof Collectors;
  const collectors = createCollectors({ enabled: { static: false, usage: false, sensors: false, gpu: false, self: false, containers: false, units: false } });
  let last = performance.now();
  let maxGap = 0;
  const probe = setInterval(() => {
    const t = performance.now();
    maxGap = Math.max(maxGap, t - last);
    last = t;
  }, 1);
  const rows: Row[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = Date.now();
    last = performance.now();
    maxGap = 0;
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    // as startCollectors does when both are due in the same tick: started together, one `now`
    const out = await Promise.all(collectors.map((c) => c.collector.collect(now)));
    const wallMs = performance.now() - w0;
    const u = process.cpuUsage(c0);
    const conn = out[collectors.findIndex((c) => c.name === 'connections')] as { counts: { tcp: Record<string, number> }; listening: { pid?: number }[]; connections: { pid?: number }[] };
    const reported = [...conn.listening, ...conn.connections];
    await new Promise((r) => setImmediate(r));
    const gap = Math.max(maxGap, performance.now() - last);
    const sockets = Object.values(conn.counts.tcp).reduce((a, b) => a + b, 0);
    if (i > 0) rows.push({ cpuMs: (u.user + u.system) / 1000, wallMs, maxGapMs: gap, sockets, reported: reported.length, owned: reported.filter((x) => x.pid !== undefined).length });
  }
  clearInterval(probe);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  process.stdout.write(JSON.stringify({ rows, rssKb }));
  process.exit(0);
}

const HOLDER = `
import net from 'node:net';
const n = Number(process.argv[1]);
const churn = process.argv[2] === 'churn';
const conns = [];
const srv = net.createServer((s) => { s.on('error', () => {}); conns.push(s); });
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const port = srv.address().port;
const open = () => new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); c.on('error', () => r(undefined)); });
for (let i = 0; i < n; i += 500) (await Promise.all(Array.from({ length: Math.min(500, n - i) }, open))).forEach((c) => c && conns.push(c));
if (churn) setInterval(async () => { for (let i = 0; i < 20; i++) { conns.shift()?.destroy(); const c = await open(); if (c) conns.push(c); } }, 1000);
process.stdout.write('ready\\n');
setInterval(() => {}, 1 << 30);
`;

/** Open files this process (and so its children) may hold. */
function fdLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

function tcpSockets(): number {
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) n += readFileSync(f, 'latin1').split('\n').length - 2;
  return n;
}

async function startHolders(total: number): Promise<ChildProcess[]> {
  // each connection is two sockets in the holder (client and accepted ends)
  const perHolder = Math.max(100, Math.floor((fdLimit() - 100) / 2));
  const holders: ChildProcess[] = [];
  let left = Math.ceil(total / 2);
  while (left > 0) {
    const n = Math.min(perHolder, left);
    left -= n;
    const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, String(n), holders.length === 0 ? 'churn' : ''], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`a holder exited (${code}) before it was ready`)));
    });
    holders.push(child);
  }
  return holders;
}

async function measure(dist: string): Promise<{ rows: Row[]; rssKb: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-opt', fileURLToPath(import.meta.url), '--collect', dist], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`--collect exited ${code}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number, d = 1) => n.toFixed(d);

const target = Number(process.env.BENCH_SOCKETS ?? 100_000);
const builds: [string, string][] = [['this build', join(repo, 'packages/agent/dist')]];
if (process.env.BENCH_BASELINE) builds.unshift(['baseline (BENCH_BASELINE)', process.env.BENCH_BASELINE]);

// a quiet host first: the TIME_WAIT sockets of an earlier run last a minute
for (let i = 0; i < 75 && tcpSockets() > 2000; i++) await new Promise((r) => setTimeout(r, 1000));
const quiet = Object.fromEntries(await Promise.all(builds.map(async ([label, dist]) => [label, await measure(dist)] as const)));
const holders = await startHolders(target);
const busy: Record<string, Awaited<ReturnType<typeof measure>>> = {};
try {
  // the holders are ready once their connections are up: wait until the kernel's tables show them
  for (let i = 0; i < 100 && tcpSockets() < target; i++) await new Promise((r) => setTimeout(r, 100));
  for (const [label, dist] of builds) busy[label] = await measure(dist);
} finally {
  for (const h of holders) h.kill('SIGKILL');
}
const sockets = tcpSockets();

const lines = [
  `# Socket collectors on a busy host`,
  '',
  `${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · Node ${process.version} · \`node bench/dist/busy-sockets.js\``,
  '',
  `- Host: ${holders.length} holder processes with ${target.toLocaleString('en')} loopback TCP sockets between them (up to ${Math.max(100, Math.floor((fdLimit() - 100) / 2)) * 2} each, this machine's open-file limit); one closes and reopens 20 connections a second.`,
  `- Each row: the processes and connections collectors started together with one \`now\`, as the agent runs them every 30 s, in a child process without TurboFan (\`--no-opt\`, as \`tether agent\` runs); ${RUNS} collections 200 ms apart after one warm-up; medians, and the worst of the ${RUNS} for the event-loop gap.`,
  `- "Longest event-loop gap": the largest interval between turns of a 1 ms timer during the collection: how long the agent could not answer the hub, a heartbeat or a terminal.`,
  '',
  '| build | host | TCP sockets seen | CPU per collection | wall | longest event-loop gap (median / worst) | listed sockets with their pid | RSS after |',
  '|---|---|---|---|---|---|---|---|',
];
for (const [label] of builds) {
  for (const [host, r] of [['quiet', quiet[label]!], ['busy', busy[label]!]] as const) {
    const rows = r.rows;
    lines.push(
      `| ${label} | ${host} | ${median(rows.map((x) => x.sockets)).toLocaleString('en')} | ${f(median(rows.map((x) => x.cpuMs)))} ms | ${f(median(rows.map((x) => x.wallMs)))} ms | ${f(median(rows.map((x) => x.maxGapMs)))} / ${f(Math.max(...rows.map((x) => x.maxGapMs)))} ms | ${median(rows.map((x) => x.owned))} of ${median(rows.map((x) => x.reported))} | ${f(r.rssKb / 1024)} MB |`,
    );
  }
}
lines.push('', `TCP sockets left after the holders were killed (TIME_WAIT and closing): ${sockets.toLocaleString('en')}.`, '');
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/busy-sockets.md'), lines.join('\n'));
console.log(lines.join('\n'));
