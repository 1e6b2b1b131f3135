/**
 * Hub ingestion under a fleet: N simulated agents (real protocol, real signatures) each send a
 * usage report every 5 s — a real sample from this machine's collector, re-stamped — for a measured
 * period. Reported: report→ack round trip seen by the agents (parse, validate, store, commit, ack),
 * the hub's own receive→commit latency, hub CPU and RSS.
 *
 * Usage: node bench/dist/ingest.js [N=10000] [sqlite|postgres] [seconds=60]
 */
import { TestHub, simFacts, newSimIdentity, simConnect, type RawAgent } from '@tether/testkit';
import { realUsage } from './lib/sample.js';
import { encodeFrame, newMessageId } from '@tether/protocol';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { nodeFlags, cpuSec, machine, percentile, pool, record, rssMiB } from './lib/util.js';

const N = Number(process.argv[2] ?? 10000);
const db = (process.argv[3] ?? 'sqlite') as 'sqlite' | 'postgres';
const SECONDS = Number(process.argv[4] ?? 60);
const INTERVAL = 5000;
/** Reports flow this long before measuring (WARMUP_SEC): the first minute fills every cache and the heap. */
const WARMUP_SEC = Number(process.env.WARMUP_SEC ?? 10);


async function main(): Promise<void> {
  const sample = await realUsage();
  const hub = await TestHub.start({ db, heartbeat: '10s', env: { TETHER_LOG_LEVEL: process.env.HUB_LOG_LEVEL ?? 'info' }, ...(process.env.HUB_NODE_ARGS ? { nodeArgs: process.env.HUB_NODE_ARGS.split(' ') } : {}) });
  if (process.env.PIN_CPUS) {
    // PIN_CPUS=HUB:SIM, e.g. 0:1 — the hub (every thread) on one CPU, the simulated fleet on another.
    const [hubCpu, simCpu] = process.env.PIN_CPUS.split(':');
    const { execFileSync } = await import('node:child_process');
    execFileSync('taskset', ['-apc', hubCpu!, String(hub.proc.pid)], { stdio: 'ignore' });
    execFileSync('taskset', ['-apc', simCpu!, String(process.pid)], { stdio: 'ignore' });
  }
  const sockets: RawAgent[] = [];
  const rtt: number[] = [];
  // DUMP_RTT=file writes every measured round trip as [wall-clock send time, ms, monotonic send time in µs
  // (the clock of a V8 CPU profile)], to see when the tail happens and what the hub did then.
  const timeline: [number, number, number][] | undefined = process.env.DUMP_RTT ? [] : undefined;
  // Round trips split by where in the wall-clock minute the report was sent, to see whether the
  // tail sits at minute boundaries (when every host closes a minute) or is spread evenly.
  const rttEarly: number[] = [];
  const rttLate: number[] = [];
  let acks = 0;
  let sent = 0;
  try {
    const token = await hub.enrollToken({ expiresInSec: 3600 });
    const t0 = performance.now();
    await pool(Array.from({ length: N }, (_, i) => i), 256, async (i) => {
      const a = await simConnect(hub.url, newSimIdentity(), { token, facts: simFacts(`sim-${i}`) });
      a.keep = false;
      sockets[i] = a;
    });
    const connectSec = (performance.now() - t0) / 1000;
    const pending = new Map<string, number>();
    const sentAtWall = new Map<string, number>();
    for (const a of sockets) {
      a.onMessage = (m) => {
        if (m.type !== 'ack' || !m.re) return;
        const s = pending.get(m.re);
        if (s !== undefined) {
          pending.delete(m.re);
          const wall = sentAtWall.get(m.re)!;
          sentAtWall.delete(m.re);
          if (measuring) {
            const d = performance.now() - s;
            rtt.push(d);
            if (timeline) timeline.push([wall, +d.toFixed(1), Math.round(Number(process.hrtime.bigint() / 1000n) - d * 1000)]);
            (wall % 60_000 < 10_000 ? rttEarly : rttLate).push(d);
          }
          acks++;
        }
      };
    }
    const rss0 = rssMiB(hub.proc.pid);
    // Every agent reports every 5 s, spread evenly over the interval (as real agents drift apart).
    let measuring = false;
    const bodyOf = (ts: number, i: number) => ({ ...sample, ts, load: { one: (i % 100) / 10, five: 1, fifteen: 1 } });
    const timers: NodeJS.Timeout[] = [];
    const start = Date.now();
    for (let i = 0; i < N; i++) {
      const offset = (i / N) * INTERVAL;
      const send = () => {
        const id = newMessageId();
        pending.set(id, performance.now());
        sentAtWall.set(id, Date.now());
        sockets[i]!.sendRaw(encodeFrame('report.usage', bodyOf(Date.now(), i), { id }));
        sent++;
      };
      timers.push(setTimeout(() => {
        send();
        timers.push(setInterval(send, INTERVAL));
      }, offset));
    }
    // Warm up for two intervals, then measure.
    await new Promise((r) => setTimeout(r, WARMUP_SEC * 1000));
    measuring = true;
    const simLag = monitorEventLoopDelay({ resolution: 10 });
    simLag.enable();
    // The simulator's own stalls: a histogram hides a rare long one (one sample for the whole stall).
    const simStalls: [monoUs: number, ms: number][] = [];
    let lastBeat = performance.now();
    const beat = setInterval(() => {
      const t = performance.now();
      if (t - lastBeat > 60) simStalls.push([Math.round(Number(process.hrtime.bigint() / 1000n)), Math.round(t - lastBeat)]);
      lastBeat = t;
    }, 10);
    const cpu0 = cpuSec(hub.proc.pid);
    const simCpu0 = process.cpuUsage();
    const m0 = Date.now();
    let peakRss = 0;
    // How the hub answers other callers meanwhile: a page it serves from memory (no database) and
    // a session check (one database read), each asked every 250 ms, one at a time.
    const probeMs: Record<'memory' | 'database', number[]> = { memory: [], database: [] };
    let probing = true;
    const probe = async (kind: 'memory' | 'database', path: string) => {
      while (probing) {
        const t = performance.now();
        const r = await hub.raw('GET', path).catch(() => undefined);
        await r?.arrayBuffer().catch(() => undefined);
        if (r?.ok) probeMs[kind].push(performance.now() - t);
        await new Promise((res) => setTimeout(res, 250));
      }
    };
    const probes = [probe('memory', '/'), probe('database', '/api/v1/auth/me')];
    while (Date.now() - m0 < SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      peakRss = Math.max(peakRss, rssMiB(hub.proc.pid));
    }
    probing = false;
    await Promise.all(probes);
    for (const k of ['memory', 'database'] as const) probeMs[k].sort((a, b) => a - b);
    measuring = false;
    simLag.disable();
    clearInterval(beat);
    const simLagP99 = simLag.percentile(99) / 1e6;
    const simCpu = process.cpuUsage(simCpu0);
    const simCpuPct = ((simCpu.user + simCpu.system) / 1e6 / ((Date.now() - m0) / 1000)) * 100;
    const hubCpuPct = ((cpuSec(hub.proc.pid) - cpu0) / ((Date.now() - m0) / 1000)) * 100;
    for (const t of timers) clearTimeout(t);
    if (timeline) (await import('node:fs')).writeFileSync(process.env.DUMP_RTT!, JSON.stringify(timeline));
    if (timeline) (await import('node:fs')).writeFileSync(process.env.DUMP_RTT! + '.stalls', JSON.stringify(simStalls));
    if (process.env.DUMP_HUB) (await import('node:fs')).writeFileSync(process.env.DUMP_HUB, hub.proc.output());
    const prom = await (await hub.raw('GET', '/metrics')).text();
    const q = (k: string) => Number(prom.match(new RegExp(`tether_hub_ingest_latency_seconds\\{quantile="${k}"\\} ([0-9.e-]+)`))?.[1] ?? NaN) * 1000;
    const loop = (k: string) => +(Number(prom.match(new RegExp(`tether_hub_event_loop_delay_seconds\\{quantile="${k}"\\} ([0-9.e-]+)`))?.[1] ?? NaN) * 1000).toFixed(1);
    const hubLoop = { p50: loop('0.5'), p99: loop('0.99'), max: loop('1') };
    const gcf = (name: string, kind: string) => Number(prom.match(new RegExp(`${name}\\{kind="${kind}"\\} ([0-9.e-]+)`))?.[1] ?? NaN);
    const hubGc = {
      majorCount: gcf('tether_hub_gc_pause_seconds_count', 'major'),
      majorMaxMs: +(gcf('tether_hub_gc_pause_max_seconds', 'major') * 1000).toFixed(1),
      majorTotalMs: +(gcf('tether_hub_gc_pause_seconds_sum', 'major') * 1000).toFixed(0),
      minorCount: gcf('tether_hub_gc_pause_seconds_count', 'minor'),
      minorMaxMs: +(gcf('tether_hub_gc_pause_max_seconds', 'minor') * 1000).toFixed(1),
      minorTotalMs: +(gcf('tether_hub_gc_pause_seconds_sum', 'minor') * 1000).toFixed(0),
    };
    const writeErrors = Number(prom.match(/tether_hub_write_errors_total (\d+)/)?.[1] ?? NaN);
    rtt.sort((a, b) => a - b);
    rttEarly.sort((a, b) => a - b);
    rttLate.sort((a, b) => a - b);
    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      hubNodeFlags: nodeFlags(hub.proc.pid),
      db,
      agents: N,
      intervalSec: INTERVAL / 1000,
      reportsPerSec: Math.round(N / (INTERVAL / 1000)),
      measuredSec: SECONDS,
      warmupSec: WARMUP_SEC,
      connectSec: +connectSec.toFixed(1),
      reportBytes: encodeFrame('report.usage', bodyOf(Date.now(), 0)).length,
      seriesPerReport: null as number | null,
      ackRoundTripMs: { p50: +percentile(rtt, 50).toFixed(1), p99: +percentile(rtt, 99).toFixed(1), max: +(rtt[rtt.length - 1] ?? NaN).toFixed(1), samples: rtt.length },
      ackRoundTripByMinutePhaseMs: { first10sP99: +percentile(rttEarly, 99).toFixed(1), rest50sP99: +percentile(rttLate, 99).toFixed(1) },
      hubReceiveToCommitMs: { p50: +q('0.5').toFixed(2), p99: +q('0.99').toFixed(2) },
      hubCpuPercent: +hubCpuPct.toFixed(1),
      simulatorEventLoopLagP99Ms: +simLagP99.toFixed(1),
      simulatorCpuPercent: +simCpuPct.toFixed(1),
      hubEventLoopDelayMs: hubLoop,
      hubGcWholeRun: hubGc,
      hubRssMiB: { connectedIdle: rss0, peak: peakRss },
      otherRequestsMs: Object.fromEntries((['memory', 'database'] as const).map((k) => [k, { p50: +percentile(probeMs[k], 50).toFixed(1), p99: +percentile(probeMs[k], 99).toFixed(1), max: +(probeMs[k][probeMs[k].length - 1] ?? NaN).toFixed(1), n: probeMs[k].length }])),
      sent,
      acked: acks,
      writeErrors,
      elapsedSec: Math.round((Date.now() - start) / 1000),
    };
    const md = [
      `## Ingestion: ${N} agents every ${INTERVAL / 1000} s on ${db} — ${result.date}`,
      ``,
      `Machine: ${result.machine}. Hub process (node flags: ${result.hubNodeFlags}) and all simulated agents share the 2 cores. Each report is a real usage sample of this machine (${result.reportBytes} bytes on the wire), ${result.reportsPerSec} reports/s, measured for ${SECONDS} s after a ${WARMUP_SEC} s warm-up.`,
      ``,
      `| figure | value | target |`,
      `|---|---|---|`,
      `| report → ack round trip (agent side) p50 / p99 / max | ${result.ackRoundTripMs.p50} / ${result.ackRoundTripMs.p99} / ${result.ackRoundTripMs.max} ms | p99 < 50 ms |`,
      `| round trip p99: sent in the first 10 s of a minute / in the other 50 s | ${result.ackRoundTripByMinutePhaseMs.first10sP99} / ${result.ackRoundTripByMinutePhaseMs.rest50sP99} ms | |`,
      `| hub receive → commit p50 / p99 | ${result.hubReceiveToCommitMs.p50} / ${result.hubReceiveToCommitMs.p99} ms | |`,
      `| hub CPU | ${result.hubCpuPercent} % of one core | |`,
      `| hub event-loop delay p50 / p99 / max (whole run, enrollment included) | ${hubLoop.p50} / ${hubLoop.p99} / ${hubLoop.max} ms | |`,
      `| hub GC over the whole run: major count / longest / total, minor count / longest / total | ${hubGc.majorCount} / ${hubGc.majorMaxMs} / ${hubGc.majorTotalMs} ms, ${hubGc.minorCount} / ${hubGc.minorMaxMs} / ${hubGc.minorTotalMs} ms | |`,
      `| simulator (all agents, one process): event-loop lag p99 (included in the round trip) / CPU | ${result.simulatorEventLoopLagP99Ms} ms / ${result.simulatorCpuPercent} % of one core | |`,
      `| hub RSS connected idle / peak while ingesting | ${rss0} / ${peakRss} MiB | < 1 GiB |`,
      `| meanwhile, other requests: the console page (from memory) p50 / p99 / max | ${result.otherRequestsMs.memory!.p50} / ${result.otherRequestsMs.memory!.p99} / ${result.otherRequestsMs.memory!.max} ms | |`,
      `| meanwhile, other requests: a session check (one database read) p50 / p99 / max | ${result.otherRequestsMs.database!.p50} / ${result.otherRequestsMs.database!.p99} / ${result.otherRequestsMs.database!.max} ms | |`,
      `| reports sent / acknowledged / write errors | ${sent} / ${acks} / ${writeErrors} | |`,
      ``,
    ].join('\n');
    record(`ingest-${db}-${N}`, md, result);
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
