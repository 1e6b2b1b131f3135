/**
 * 30 days of 1-minute history for one host with a realistic series count (the series this
 * machine's usage collector produces), written through the store's real write path (minute
 * buckets, then hourly compaction), then queried: one series, one family (all its dimensions),
 * on SQLite and PostgreSQL.
 *
 * Usage: node bench/dist/query.js [sqlite|postgres|both]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, migrate, ALL_MIGRATIONS } from '@tether/hub';
import { MetricStore } from '@tether/hub/dist/src/modules/metrics/store.js';
import { querySeries } from '@tether/hub/dist/src/modules/metrics/query.js';
import { flattenUsage } from '@tether/hub/dist/src/modules/metrics/series.js';
import { realUsage } from './lib/sample.js';
import { PG_URL } from '@tether/testkit';
import { machine, percentile, record } from './lib/util.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAYS = 30;

async function keysOfThisMachine(): Promise<string[]> {
  return Object.keys(flattenUsage(await realUsage())).sort();
}

async function run(engine: 'sqlite' | 'postgres', keys: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-qbench-'));
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const h = await openDatabase(engine === 'sqlite' ? `sqlite:${join(dir, 'q.db')}` : `${PG_URL}?schema=${schema}`);
  try {
    await migrate(h.db, ALL_MIGRATIONS, h.schema);
    const store = new MetricStore(h.db, h.sqlite);
    const end = Math.floor(Date.now() / HOUR) * HOUR;
    const start = end - DAYS * 24 * HOUR;
    const n = keys.length;
    const t0 = performance.now();
    for (let hour = start; hour < end; hour += HOUR) {
      const buckets = [];
      for (let m = 0; m < 60; m++) {
        const ts = hour + m * MINUTE;
        const avg = new Float64Array(n).map((_, i) => 50 + 40 * Math.sin((ts / HOUR + i) / 7));
        buckets.push({ ts, keys, avg, min: avg.map((v) => v - 5), max: avg.map((v) => v + 5), count: new Float64Array(n).fill(12) });
      }
      await store.upsertMinutes('bench-host', buckets);
      await store.compactHour('bench-host', hour);
    }
    const writeSec = (performance.now() - t0) / 1000;
    const time = async (wanted: string[], reps = 20) => {
      const ms: number[] = [];
      let points = 0;
      for (let i = 0; i < reps + 3; i++) {
        const s = performance.now();
        const r = await querySeries(store, 'bench-host', wanted, start, end, '1m');
        const e = performance.now() - s;
        if (i >= 3) ms.push(e);
        points = [...r.values()].reduce((a, p) => a + p.length, 0);
      }
      ms.sort((a, b) => a - b);
      return { p50: +percentile(ms, 50).toFixed(1), p99: +percentile(ms, 99).toFixed(1), points };
    };
    const one = await time(['cpu_percent|busy']);
    const family = await time(['cpu_percent']);
    // Serialising the answer as the API does (JSON), for the one-series case.
    const r = await querySeries(store, 'bench-host', ['cpu_percent|busy'], start, end, '1m');
    const s = performance.now();
    const json = JSON.stringify({ series: [...r].map(([key, points]) => ({ key, points })) });
    const jsonMs = +(performance.now() - s).toFixed(1);
    return { engine, series: n, days: DAYS, writeSec: +writeSec.toFixed(1), oneSeries: one, family: { name: 'cpu_percent', ...family }, jsonMs, jsonBytes: json.length };
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
    if (engine === 'postgres') {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  }
}

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'both';
  const keys = await keysOfThisMachine();
  const engines = which === 'both' ? (['sqlite', 'postgres'] as const) : [which as 'sqlite' | 'postgres'];
  const results = [];
  for (const e of engines) results.push(await run(e, keys));
  const date = new Date().toISOString();
  const md = [
    `## 30-day 1-minute query for one host — ${date}`,
    ``,
    `Machine: ${machine()}. ${results[0]!.series} series per host (this machine's usage collector), ${DAYS} days × 1,440 minutes, written through upsertMinutes + compactHour. Store-level query time over 20 runs after 3 warm-ups; target < 50 ms.`,
    ``,
    `| database | one series (43,200 points) p50 / p99 | one family p50 / p99 (points) | JSON of the one-series answer | write of 30 days |`,
    `|---|---|---|---|---|`,
    ...results.map((r) => `| ${r.engine} | ${r.oneSeries.p50} / ${r.oneSeries.p99} ms | ${r.family.p50} / ${r.family.p99} ms (${r.family.points}) | ${r.jsonMs} ms, ${Math.round(r.jsonBytes / 1024)} KiB | ${r.writeSec} s |`),
    ``,
  ].join('\n');
  record('query-30d', md, { date, machine: machine(), results });
  process.stdout.write(md + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
