/**
 * GET /metrics for a large fleet: N simulated agents (real protocol) each report one real usage
 * sample, then the exposition is scraped a few times while another client asks for a page the hub
 * serves from memory every 20 ms. Reported: scrape time, size and lines, hub CPU per scrape, and
 * how long the hub kept that other client waiting meanwhile (what a scrape costs everyone else).
 *
 * Usage: node bench/dist/prometheus.js [N=10000] [scrapes=3]
 */
import { TestHub, simFacts, newSimIdentity, simConnect, type RawAgent } from '@tether/testkit';
import { realUsage } from './lib/sample.js';
import { encodeFrame, newMessageId } from '@tether/protocol';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cpuSec, machine, percentile, pool, record } from './lib/util.js';

const exec = promisify(execFile);

const N = Number(process.argv[2] ?? 10000);
const SCRAPES = Number(process.argv[3] ?? 3);


async function main(): Promise<void> {
  const sample = await realUsage();
  const hub = await TestHub.start({ db: 'sqlite', heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' } });
  const sockets: RawAgent[] = [];
  try {
    const token = await hub.enrollToken({ expiresInSec: 3600 });
    await pool(Array.from({ length: N }, (_, i) => i), 256, async (i) => {
      const a = await simConnect(hub.url, newSimIdentity(), { token, facts: simFacts(`sim-${i}`) });
      a.keep = false;
      sockets[i] = a;
    });
    // One report each, then wait until every one is acknowledged (committed, in the latest state).
    let acks = 0;
    for (const a of sockets) a.onMessage = (m) => void (m.type === 'ack' && acks++);
    for (const a of sockets) a.sendRaw(encodeFrame('report.usage', { ...sample, ts: Date.now() }, { id: newMessageId() }));
    const deadline = Date.now() + 120_000;
    while (acks < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // An ack comes after the commit, and the latest state is set before it: nothing to wait for.
    if (acks < N) throw new Error(`only ${acks} of ${N} reports acknowledged within 120 s`);

    const runs: { ms: number; bytes: number; lines: number; hubCpuSec: number; otherMaxMs: number; otherP99Ms: number; otherN: number }[] = [];
    for (let s = 0; s < SCRAPES; s++) {
      const other: number[] = [];
      let scraping = true;
      const probe = (async () => {
        while (scraping) {
          const t = performance.now();
          const r = await hub.raw('GET', '/').catch(() => undefined);
          await r?.arrayBuffer().catch(() => undefined);
          other.push(performance.now() - t);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      const cpu0 = cpuSec(hub.proc.pid);
      const t0 = performance.now();
      // The scrape runs in curl, so that receiving 90 MB does not delay this process's own probe.
      const out = join(tmpdir(), `tether-bench-metrics-${process.pid}.txt`);
      await exec('curl', ['-sf', '-o', out, '-H', `authorization: Bearer ${hub.token}`, hub.url + '/metrics']);
      const ms = performance.now() - t0;
      const hubCpuSec = cpuSec(hub.proc.pid) - cpu0;
      scraping = false;
      await probe;
      const text = readFileSync(out, 'utf8');
      rmSync(out, { force: true });
      other.sort((a, b) => a - b);
      let lines = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
      runs.push({ ms: Math.round(ms), bytes: Buffer.byteLength(text), lines, hubCpuSec: +hubCpuSec.toFixed(2), otherMaxMs: +(other[other.length - 1] ?? NaN).toFixed(1), otherP99Ms: +percentile(other, 99).toFixed(1), otherN: other.length });
      // A second between scrapes, so that one scrape's garbage is not collected during the next.
      await new Promise((r) => setTimeout(r, 1000));
    }
    const result = { date: new Date().toISOString(), machine: machine(), hosts: N, acknowledged: acks, scrapes: runs };
    const md = [
      `## GET /metrics with ${N} hosts — ${result.date}`,
      ``,
      `Machine: ${result.machine}. Hub on SQLite; ${N} simulated agents (one process, sharing the cores), each with one real usage report in the hub's latest state (${acks} acknowledged). Each scrape is made by curl; while it ran, another client (this process) asked the hub for its console page (served from memory) every 20 ms.`,
      ``,
      `| scrape | time | size | lines | hub CPU | the other client meanwhile: longest wait / p99 (requests) |`,
      `|---|---|---|---|---|---|`,
      ...runs.map((r, i) => `| ${i + 1} | ${r.ms} ms | ${(r.bytes / 2 ** 20).toFixed(1)} MiB | ${r.lines} | ${r.hubCpuSec} s | ${r.otherMaxMs} / ${r.otherP99Ms} ms (${r.otherN}) |`),
      ``,
    ].join('\n');
    record('prometheus', md, result);
    process.stdout.write(md + '\n');
  } finally {
    for (const a of sockets) a?.close();
    await hub.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
