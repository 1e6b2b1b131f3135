/**
 * Ingestion, rollups, compaction, late samples, retention and top-N on known inputs, on both engines.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { ProcessSummary } from '@tether/protocol';
import type { DbHandle } from '../src/db/database.js';
import { ENGINES, testDb } from './db.js';
import { MetricStore } from '../src/modules/metrics/store.js';
import { MetricsService, MinuteAcc, DEFAULT_RETENTION } from '../src/modules/metrics/service.js';
import { internKeys } from '../src/modules/metrics/intern.js';
import { pickTier, querySeries } from '../src/modules/metrics/query.js';
import { HOUR, MINUTE } from '../src/modules/metrics/codec.js';
import { parseTime } from '../src/modules/metrics/routes.js';
import { systemClock } from '../src/clock.js';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 1, 10, 0, 0); // an hour boundary

test('the tier follows the range and what each tier still holds', () => {
  const now = T0 + 40 * 86400_000;
  const r = DEFAULT_RETENTION;
  assert.equal(pickTier(now - HOUR, now, now, r), 'raw');
  assert.equal(pickTier(now - 6 * HOUR, now, now, r), 'raw');
  assert.equal(pickTier(now - 24 * HOUR, now, now, r), '1m');
  assert.equal(pickTier(now - 30 * 86400_000, now, now, r), '1m');
  assert.equal(pickTier(now - 90 * 86400_000, now, now, r), '1h');
  assert.equal(pickTier(now - 36 * 86400_000, now - 35 * 86400_000, now, r), '1h', 'a short range older than the 1m retention');
  assert.equal(pickTier(now - 30 * HOUR, now - 29 * HOUR, now, r), '1m', 'a short range older than the raw retention');
});

test('a minute accumulator: avg/min/max/count per series, series that come and go, index kept across minutes', () => {
  const a = new MinuteAcc(T0);
  // More series than the initial capacity (16), so the array grows while values are in it.
  for (let s = 0; s < 40; s++) a.add({ [`cpu_core_busy_percent|${s}`]: s, load1: 1 });
  a.add({ 'cpu_core_busy_percent|3': 13, load1: 5, 'fs_used_percent|/': NaN, 'memory_bytes|used': Infinity });
  const b = a.bucket()!;
  assert.equal(b.ts, T0);
  assert.equal(b.keys.length, 41, 'non-finite values make no series');
  assert.deepEqual(b.keys, [...b.keys].sort());
  const at = (k: string) => b.keys.indexOf(k);
  assert.equal(b.count[at('load1')], 41);
  assert.equal(b.avg[at('load1')], (40 * 1 + 5) / 41);
  assert.equal(b.min[at('load1')], 1);
  assert.equal(b.max[at('load1')], 5);
  assert.deepEqual([b.avg[at('cpu_core_busy_percent|3')], b.min[at('cpu_core_busy_percent|3')], b.max[at('cpu_core_busy_percent|3')], b.count[at('cpu_core_busy_percent|3')]], [8, 3, 13, 2]);
  assert.deepEqual([b.avg[at('cpu_core_busy_percent|39')], b.count[at('cpu_core_busy_percent|39')]], [39, 1]);

  // The next minute starts empty but keeps the index; a series that stops reporting is left out.
  a.reset(T0 + MINUTE);
  assert.equal(a.bucket(), undefined, 'an empty minute has no bucket');
  a.add({ load1: 2, 'cpu_core_busy_percent|0': 50 });
  a.add({ load1: 4, 'cpu_core_busy_percent|0': 70, 'net_rx_bytes_per_second|eth0': 9 });
  const c = a.bucket()!;
  assert.equal(c.ts, T0 + MINUTE);
  assert.deepEqual(c.keys, ['cpu_core_busy_percent|0', 'load1', 'net_rx_bytes_per_second|eth0']);
  assert.deepEqual([...c.avg], [60, 3, 9]);
  assert.deepEqual([...c.min], [50, 2, 9]);
  assert.deepEqual([...c.max], [70, 4, 9]);
  assert.deepEqual([...c.count], [2, 2, 1]);
  // Written buckets are copies: starting the next minute does not change them.
  a.reset(T0 + 2 * MINUTE);
  a.add({ load1: 100 });
  assert.deepEqual([...c.avg], [60, 3, 9]);
  assert.equal(a.bucket()!.avg[0], 100);
});

test('alike hosts share one series index and one key list; a host that differs gets its own, and values stay its own', () => {
  const usage = (i: number) => ({ load1: i, 'cpu_percent|busy': 10 * i, 'fs_used_percent|/': 50 + i });
  const hosts = [1, 2, 3].map(() => new MinuteAcc(T0));
  hosts.forEach((h, i) => h.add(usage(i + 1)));
  assert.equal(hosts[0]!.index, hosts[1]!.index, 'the same series in the same order: one shared index');
  assert.equal(hosts[1]!.index, hosts[2]!.index);
  const shared = hosts[0]!.index;

  // One host meets a new series: it moves to an index that extends the old one, the others stay.
  hosts[2]!.add({ load1: 30, 'net_rx_bytes_per_second|eth0': 7 });
  assert.notEqual(hosts[2]!.index, shared);
  assert.equal(hosts[0]!.index, shared);
  assert.deepEqual(hosts[2]!.index.keys, [...shared.keys, 'net_rx_bytes_per_second|eth0']);
  assert.equal(hosts[2]!.index.slot.get('load1'), shared.slot.get('load1'), 'old series keep their slots');

  // Each host's figures are its own, whatever it shares.
  const b0 = hosts[0]!.bucket()!;
  const b2 = hosts[2]!.bucket()!;
  assert.deepEqual(b0.keys, ['cpu_percent|busy', 'fs_used_percent|/', 'load1']);
  assert.deepEqual([...b0.avg], [10, 51, 1]);
  assert.deepEqual(b2.keys, ['cpu_percent|busy', 'fs_used_percent|/', 'load1', 'net_rx_bytes_per_second|eth0']);
  assert.deepEqual([...b2.avg], [30, 53, 16.5, 7]);
  assert.deepEqual([...b2.count], [1, 1, 2, 1]);
  // A second host meeting the same new series joins that index rather than making a third.
  hosts[1]!.add({ 'net_rx_bytes_per_second|eth0': 1 });
  assert.equal(hosts[1]!.index, hosts[2]!.index);
  assert.equal(hosts[1]!.bucket()!.keys, b2.keys, 'the sorted key list is shared too');

  // Key lists: the same content is one list, whoever offers it first; different content is not.
  const k1 = internKeys(['a', 'b']);
  assert.equal(internKeys(['a', 'b']), k1);
  assert.notEqual(internKeys(['b', 'a']), k1);
  assert.throws(() => (k1 as string[]).push('c'), TypeError, 'shared lists cannot be changed by one host');
});

test('times: epoch ms, ISO, now and relative', () => {
  const now = 1_800_000_000_000;
  assert.equal(parseTime('-1h', now, 0), now - HOUR);
  assert.equal(parseTime('now', now, 0), now);
  assert.equal(parseTime('1700000000000', now, 0), 1_700_000_000_000);
  assert.equal(parseTime('2026-11-01T10:00:00Z', now, 0), T0);
  assert.equal(parseTime(undefined, now, 7), 7);
  assert.throws(() => parseTime('yesterday-ish', now, 0), /bad time/);
});

for (const engine of ENGINES) {
  describe(`metrics on ${engine}`, () => {
    let h: DbHandle;
    let cleanup: () => Promise<void>;
    let clock = T0;
    let svc: MetricsService;
    let store: MetricStore;
    before(async () => {
      ({ h, cleanup } = await testDb(engine));
      store = new MetricStore(h.db, h.sqlite);
      // A clock the test sets by hand (it only moves forward); nothing here starts a timer.
      svc = new MetricsService(store, log, { retention: DEFAULT_RETENTION, topN: 3, graceMs: 5000, clock: { ...systemClock, now: () => clock } });
    });
    after(() => cleanup());

    test('raw samples, minute rollups (avg/min/max), hourly chunks and the hour tier agree with known inputs', async () => {
      // Two hours of samples every 5 s: cpu = minute index (0..119) + a sawtooth 0..11 within the minute.
      for (let t = T0; t < T0 + 2 * HOUR; t += 5000) {
        clock = t + 100;
        const m = Math.floor((t - T0) / MINUTE);
        const k = ((t - T0) % MINUTE) / 5000;
        svc.ingest('h1', 'usage', t, { 'cpu_percent|busy': m + k, 'fs_used_bytes|/': 1e12 + m, load1: 1 });
        if (k === 11) await svc.tick();
      }
      clock = T0 + 2 * HOUR + 3 * MINUTE;
      await svc.tick();
      await svc.compact(clock);

      const raw = await querySeries(store, 'h1', ['cpu_percent'], T0, T0 + MINUTE, 'raw');
      assert.deepEqual(raw.get('cpu_percent|busy')!.map((p) => p[1]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

      const m1 = await querySeries(store, 'h1', ['cpu_percent', 'fs_used_bytes'], T0, T0 + 2 * HOUR, '1m');
      const cpu = m1.get('cpu_percent|busy')!;
      assert.equal(cpu.length, 120, 'one point per minute for two hours');
      for (let i = 0; i < 120; i++) assert.deepEqual(cpu[i], [T0 + i * MINUTE, i + 5.5, i, i + 11], `minute ${i}`);
      assert.deepEqual(m1.get('fs_used_bytes|/')![119], [T0 + 119 * MINUTE, 1e12 + 119, 1e12 + 119, 1e12 + 119], 'large values keep full precision');
      assert.equal(m1.has('load1'), false, 'only the asked-for families');

      const h1 = await querySeries(store, 'h1', ['cpu_percent|busy'], T0, T0 + 2 * HOUR, '1h');
      assert.deepEqual(h1.get('cpu_percent|busy'), [
        [T0, 29.5 + 5.5, 0, 59 + 11],
        [T0 + HOUR, 89.5 + 5.5, 60, 119 + 11],
      ]);
    });

    test('samples that arrive after their minute closed are recomputed from raw: no hole, no double count', async () => {
      const base = T0 + 3 * HOUR;
      clock = base + 20 * MINUTE;
      // The agent was cut off for minutes 0..9 and now sends its backlog, oldest first, plus live samples.
      for (let t = base; t < base + 10 * MINUTE; t += 5000) svc.ingest('h2', 'usage', t, { 'cpu_percent|busy': 50 }, performance.now(), true);
      svc.ingest('h2', 'usage', clock - 1000, { 'cpu_percent|busy': 10 });
      await svc.tick();
      // A straggler for minute 3 arrives twice (retransmission): counted once.
      svc.ingest('h2', 'usage', base + 3 * MINUTE + 2500, { 'cpu_percent|busy': 80 }, performance.now(), true);
      svc.ingest('h2', 'usage', base + 3 * MINUTE + 2500, { 'cpu_percent|busy': 80 }, performance.now(), true);
      await svc.tick();
      const m1 = (await querySeries(store, 'h2', ['cpu_percent|busy'], base, base + 10 * MINUTE, '1m')).get('cpu_percent|busy')!;
      assert.equal(m1.length, 10, 'every minute of the partition is there');
      assert.deepEqual(m1[0], [base, 50, 50, 50]);
      assert.deepEqual(m1[3], [base + 3 * MINUTE, (50 * 12 + 80) / 13, 50, 80]);
      assert.ok(svc.counters.lateSamples >= 120);
      // Late minutes inside an hour that was already compacted are merged into its chunks.
      clock = base + 2 * HOUR;
      await svc.tick();
      await svc.compact(clock);
      svc.ingest('h2', 'usage', base + 30 * MINUTE, { 'cpu_percent|busy': 99 }, performance.now(), true);
      await svc.tick();
      await svc.compact(clock);
      const after = (await querySeries(store, 'h2', ['cpu_percent|busy'], base, base + HOUR, '1m')).get('cpu_percent|busy')!;
      assert.equal(after.length, 12, 'the 10 backlog minutes, the live minute and the late one');
      assert.deepEqual(after.find((p) => p[0] === base + 30 * MINUTE), [base + 30 * MINUTE, 99, 99, 99]);
      assert.deepEqual(after[3], [base + 3 * MINUTE, (50 * 12 + 80) / 13, 50, 80], 'earlier minutes untouched by the merge');
    });

    test('top processes per minute keep each process’s peak and are bounded to N', async () => {
      const base = T0 + 6 * HOUR;
      const proc = (pid: number, cpu: number, rss: number) => ({ pid, ppid: 1, uid: 0, user: 'root', state: 'R', name: `p${pid}`, command: `/bin/p${pid}`, startTime: 1, cpuPercent: cpu, rssBytes: rss, vmsBytes: rss, swapBytes: 0, memPercent: 1, threads: 1, listenPorts: [], connections: 0 });
      const report = (ts: number, procs: ReturnType<typeof proc>[]): ProcessSummary => ({ ts, totals: { processes: procs.length, threads: procs.length, running: 1, sleeping: 0, blocked: 0, zombie: 0, stopped: 0, other: 0, rssBytes: 0 }, processes: procs, truncated: false });
      clock = base + 1000;
      svc.handleReport('h3', 'report.processes', report(base, [proc(1, 90, 10), proc(2, 5, 500), proc(3, 1, 20), proc(4, 2, 30), proc(5, 3, 40)]));
      svc.handleReport('h3', 'report.processes', report(base + 15_000, [proc(1, 10, 10), proc(2, 70, 600), proc(3, 1, 20)]));
      clock = base + 2 * MINUTE;
      await svc.tick();
      const top = await store.readTop('h3', base, base + MINUTE);
      assert.equal(top.length, 1);
      const d = top[0]!.data as { byCpu: { pid: number; cpuPercent: number }[]; byMem: { pid: number; rssBytes: number }[] };
      assert.deepEqual(d.byCpu.map((p) => [p.pid, p.cpuPercent]), [[1, 90], [2, 70], [5, 3]]);
      assert.deepEqual(d.byMem.map((p) => [p.pid, p.rssBytes]), [[2, 600], [5, 40], [4, 30]]);
      const procSeries = await querySeries(store, 'h3', ['processes|total'], base, base + MINUTE, 'raw');
      assert.deepEqual(procSeries.get('processes|total')!.map((p) => p[1]), [5, 3]);
    });

    test('retention deletes what is due in each tier and keeps the rest', async () => {
      const now = T0 + 400 * 86400_000;
      clock = now;
      const old = now - 2 * 86400_000;
      svc.ingest('h4', 'usage', now - 1000, { load1: 1 });
      await svc.flush();
      await store.insertRaw([{ hostId: 'h4', kind: 0, ts: old, layoutId: await store.layoutFor('h4', ['load1']), values: [7] }]);
      await store.insertTop([{ hostId: 'h4', ts: now - 31 * 86400_000, data: {} }, { hostId: 'h4', ts: now - 86400_000, data: {} }]);
      const deleted = await svc.prune(now);
      assert.ok(deleted.raw! >= 1);
      assert.ok(deleted.h1! >= 2, 'the 1-hour rows of the first tests are over a year old');
      assert.deepEqual((await store.readRaw('h4', 0, now + 1)).map((r) => r.ts), [now - 1000]);
      assert.deepEqual((await store.readTop('h4', 0, now)).map((r) => r.ts), [now - 86400_000]);
      assert.equal((await querySeries(store, 'h1', ['cpu_percent'], T0, T0 + 2 * HOUR, '1m')).size, 0, '1-minute rows older than 30 days are gone');
    });

    test('the storage accounting counts what was written', async () => {
      const u = await store.usage('h1', 0, Date.now() * 2);
      assert.equal(u.raw.rows, 0, 'pruned');
      const u2 = await store.usage('h4', 0, Date.now() * 2);
      assert.equal(u2.raw.rows, 1);
      assert.equal(u2.raw.bytes, 8, 'one float64');
      assert.ok(u2.top.rows === 1 && u2.top.bytes > 0);
    });

    test('a backlog older than the raw retention still makes its minutes: retention keeps raw rows until their minute is recomputed', async () => {
      const now = T0 + 401 * 86400_000;
      clock = now;
      const old = now - 3 * 86400_000; // past the raw tier's 24 h, inside the 1-minute tier's 30 days
      for (let t = old; t < old + 2 * MINUTE; t += 5000) svc.ingest('h6', 'usage', t, { load1: (t - old) / 5000 }, performance.now(), true);
      await svc.flush();
      // Retention runs between the backlog's commit and the recompute of its minutes.
      await svc.prune(now);
      await svc.tick();
      const m1 = (await querySeries(store, 'h6', ['load1'], old, old + 2 * MINUTE, '1m')).get('load1');
      assert.deepEqual(m1, [
        [old, 5.5, 0, 11],
        [old + MINUTE, 17.5, 12, 23],
      ]);
      await svc.prune(now);
      assert.deepEqual(await store.readRaw('h6', 0, now), [], 'once recomputed, the old raw rows go');
    });

    test('a backlog whose hour is past the 1-minute retention is dropped and counted; a live report that old is stored at the hub time', async () => {
      const now = T0 + 402 * 86400_000;
      clock = now;
      const before = svc.counters.tooOld;
      svc.ingest('h7', 'usage', now - 31 * 86400_000, { load1: 1 }, performance.now(), true);
      assert.equal(svc.counters.tooOld, before + 1);
      svc.ingest('h7', 'usage', now - 31 * 86400_000, { load1: 2 });
      await svc.flush();
      assert.deepEqual((await store.readRaw('h7', 0, now + 1)).map((r) => [r.ts, r.values.load1]), [[now, 2]]);
    });
  });
}
