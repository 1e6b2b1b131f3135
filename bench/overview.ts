/**
 * The fleet overview (GET /api/v1/metrics/overview) with N hosts that report while it is asked: the
 * hub on SQLite, N simulated agents in their own process (the console bench's `--sims` mode: each
 * sends one real usage sample of this machine every 5 s), then K requests 700 ms apart, timed from
 * request to last byte. Without a browser, so the figure is the hub's alone (console-overview.ts
 * measures the page).
 *
 * Usage: node bench/dist/overview.js [N=10000] [K=15]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { TestHub, waitFor } from '@tether/testkit';
import { cpuSec, machine, percentile, record } from './lib/util.js';

const N = Number(process.argv[2] ?? 10_000);
const K = Number(process.argv[3] ?? 15);
const here = dirname(fileURLToPath(import.meta.url));

const hub = await TestHub.start({ db: 'sqlite', heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' } });
const token = await hub.enrollToken({ expiresInSec: 3600 });
const sims = spawn(process.execPath, [join(here, 'console-overview.js'), '--sims', String(N)], { env: { ...process.env, HUB_URL: hub.url, ENROLL_TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] });
try {
  await new Promise<void>((res, rej) => {
    sims.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && res());
    sims.on('exit', (c) => rej(new Error(`simulators exited with ${c}`)));
  });
  // measured once every host is listed with a report (a snapshot of all N, as the console gets it)
  await waitFor(async () => {
    const { hosts } = await hub.api<{ hosts: { ts: number | null }[] }>('GET', '/api/v1/metrics/overview');
    return hosts.length === N && hosts.every((h) => h.ts !== null);
  }, `all ${N} hosts reporting`, 120_000, 1000);
  const ms: number[] = [];
  let bytes = 0;
  let hosts = 0;
  const cpu0 = cpuSec(hub.proc.child.pid!);
  const t0 = performance.now();
  for (let i = 0; i < K; i++) {
    const s = performance.now();
    const r = await hub.raw('GET', '/api/v1/metrics/overview');
    const body = Buffer.from(await r.arrayBuffer());
    ms.push(performance.now() - s);
    bytes = body.length;
    if (i === 0) hosts = (JSON.parse(body.toString()) as { hosts: unknown[] }).hosts.length;
    await new Promise((r) => setTimeout(r, 700)); // pacing: requests spread over ingest, not a wait for anything
  }
  const hubCpu = (100 * (cpuSec(hub.proc.child.pid!) - cpu0)) / ((performance.now() - t0) / 1000);
  if (hosts !== N) throw new Error(`the overview lists ${hosts} hosts, expected ${N}`);
  const sorted = [...ms].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(0);
  const md = [
    `## Fleet overview with ${N} reporting hosts — ${new Date().toISOString()}`,
    '',
    `Machine: ${machine()}. Hub (SQLite) and ${N} simulated agents (2,000 usage reports/s) share the cores; ${K} requests 700 ms apart, request → last byte.`,
    '',
    '| figure | value |',
    '|---|---|',
    `| overview p50 / max | ${f(percentile(sorted, 50))} / ${f(sorted[sorted.length - 1]!)} ms |`,
    `| each request (ms) | ${ms.map(f).join(' ')} |`,
    `| response | ${Math.round(bytes / 1024)} KiB, ${hosts} hosts |`,
    `| hub CPU meanwhile (ingest included) | ${hubCpu.toFixed(1)} % of one core |`,
    '',
  ].join('\n');
  record(`overview-${N}`, md, { date: new Date().toISOString(), machine: machine(), hosts: N, requestsMs: ms, bytes, hubCpuPercent: hubCpu });
  console.log(md);
} finally {
  sims.kill('SIGKILL');
  await hub.cleanup();
}
process.exit(0);
