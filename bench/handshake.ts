/**
 * Connects N protocol-speaking simulated agents (real Ed25519 keys and signatures, real WebSockets)
 * to one hub process and measures:
 *   1. enrollment: N first connections with a token (host rows created),
 *   2. steady state: hub RSS and CPU with N agents connected and heartbeating,
 *   3. reconnect storm: the hub is killed and restarted, and all N agents come back at once
 *      (no jitter: the worst case) — handshakes per second and time until all are online.
 *
 * Usage: node bench/dist/handshake.js [N=1000] [sqlite|postgres] [concurrency=256]
 */
import { TestHub } from '@tether/testkit';
import { simFacts, newSimIdentity, simConnect, type RawAgent, type SimIdentity } from '@tether/testkit';
import { cpuSec, machine, percentile, pool, record, rssMiB } from './lib/util.js';

const N = Number(process.argv[2] ?? 1000);
const db = (process.argv[3] ?? 'sqlite') as 'sqlite' | 'postgres';
const CONC = Number(process.argv[4] ?? 256);

async function connectAll(hubUrl: string, ids: SimIdentity[], token: string | undefined, sockets: RawAgent[]): Promise<{ secs: number; lat: number[]; failures: number }> {
  const lat: number[] = [];
  let failures = 0;
  const t0 = performance.now();
  await pool(ids, CONC, async (id, i) => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const s = performance.now();
      try {
        sockets[i] = await simConnect(hubUrl, id, { ...(token ? { token } : {}), facts: simFacts(`sim-${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) });
        lat.push(performance.now() - s);
        return;
      } catch {
        failures++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`agent ${i} could not connect`);
  });
  return { secs: (performance.now() - t0) / 1000, lat: lat.sort((a, b) => a - b), failures };
}

async function main(): Promise<void> {
  const hub = await TestHub.start({ db, heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' } });
  const sockets: RawAgent[] = new Array(N);
  try {
    const token = await hub.enrollToken({ expiresInSec: 3600 });
    const ids = Array.from({ length: N }, () => newSimIdentity());
    const rss0 = rssMiB(hub.proc.pid);

    const cpu1 = cpuSec(hub.proc.pid);
    const enroll = await connectAll(hub.url, ids, token, sockets);
    const enrollCpu = cpuSec(hub.proc.pid) - cpu1;
    const health = (await (await fetch(hub.url + '/api/v1/health')).json()) as { agentsOnline: number };
    if (health.agentsOnline !== N) throw new Error(`expected ${N} online, hub says ${health.agentsOnline}`);

    // Steady state: 30 s of N agents heartbeating.
    await new Promise((r) => setTimeout(r, 5000));
    const cpu2 = cpuSec(hub.proc.pid);
    const t2 = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const steadyCpuPct = ((cpuSec(hub.proc.pid) - cpu2) / ((Date.now() - t2) / 1000)) * 100;
    const rssSteady = rssMiB(hub.proc.pid);

    // Reconnect storm after a hub restart.
    await hub.kill('SIGKILL');
    await Promise.all(sockets.map((s) => s.closed));
    await hub.restart();
    const rssFresh = rssMiB(hub.proc.pid);
    const cpu3 = cpuSec(hub.proc.pid);
    const storm = await connectAll(hub.url, ids, undefined, sockets);
    const stormCpu = cpuSec(hub.proc.pid) - cpu3;
    const h2 = (await (await fetch(hub.url + '/api/v1/health')).json()) as { agentsOnline: number };
    const total = (await hub.hosts('?limit=1')).total;
    if (h2.agentsOnline !== N || total !== N) throw new Error(`after the storm: ${h2.agentsOnline} online, ${total} hosts (want ${N})`);
    const rssAfter = rssMiB(hub.proc.pid);

    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      db,
      agents: N,
      concurrency: CONC,
      enroll: { seconds: +enroll.secs.toFixed(2), perSec: Math.round(N / enroll.secs), p50ms: +percentile(enroll.lat, 50).toFixed(1), p99ms: +percentile(enroll.lat, 99).toFixed(1), retries: enroll.failures, hubCpuSec: +enrollCpu.toFixed(2) },
      steady: { hubRssMiB: rssSteady, hubCpuPercent: +steadyCpuPct.toFixed(1), heartbeatSec: 10 },
      reconnectStorm: { seconds: +storm.secs.toFixed(2), perSec: Math.round(N / storm.secs), p50ms: +percentile(storm.lat, 50).toFixed(1), p99ms: +percentile(storm.lat, 99).toFixed(1), retries: storm.failures, hubCpuSec: +stormCpu.toFixed(2), hubRssAfterMiB: rssAfter },
      hubRssIdleMiB: { beforeAgents: rss0, afterRestart: rssFresh },
      duplicates: total - N,
    };
    const md = [
      `## ${N} agents, ${db} — ${result.date}`,
      ``,
      `Machine: ${result.machine}. Hub and simulated agents share the machine (agents in one process, ${CONC} handshakes in flight).`,
      ``,
      `| phase | time | rate | latency p50 / p99 | hub CPU | hub RSS |`,
      `|---|---|---|---|---|---|`,
      `| enrollment (token, host rows created) | ${result.enroll.seconds} s | ${result.enroll.perSec}/s | ${result.enroll.p50ms} / ${result.enroll.p99ms} ms | ${result.enroll.hubCpuSec} s | — |`,
      `| steady, ${N} connected, 10 s heartbeat | 30 s | — | — | ${result.steady.hubCpuPercent} % | ${result.steady.hubRssMiB} MiB |`,
      `| reconnect storm after hub restart (no jitter) | ${result.reconnectStorm.seconds} s | ${result.reconnectStorm.perSec}/s | ${result.reconnectStorm.p50ms} / ${result.reconnectStorm.p99ms} ms | ${result.reconnectStorm.hubCpuSec} s | ${result.reconnectStorm.hubRssAfterMiB} MiB |`,
      ``,
      `Hub RSS idle: ${rss0} MiB before agents, ${rssFresh} MiB right after restart. Duplicate hosts after the storm: ${result.duplicates}. Retries: ${enroll.failures} + ${storm.failures}.`,
      ``,
    ].join('\n');
    record(`handshake-${db}-${N}`, md, result);
    process.stdout.write(md + '\n');
  } finally {
    for (const s of sockets) s?.ws.terminate();
    await hub.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
