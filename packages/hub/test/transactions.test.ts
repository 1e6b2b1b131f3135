/**
 * No query escapes its transaction. On SQLite the hub has one connection: a query sent on the
 * store's own handle while a transaction holds that connection waits for it for ever, and with it
 * every later query of the hub (issue 21: the hub hung at its first hourly compaction). Here every
 * store method that opens a transaction runs on a database with one connection (SQLite's, and a
 * PostgreSQL pool of one) and a short bound on waiting for it, so an escape fails in a fraction of a
 * second instead of hanging. The list of such methods is checked against the source: a new
 * transaction that is not driven here fails this test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { ENGINES, testDb } from './db.js';
import { DbBusyError, type DbHandle } from '../src/db/database.js';
import { MetricStore } from '../src/modules/metrics/store.js';
import { HOUR, MINUTE } from '../src/modules/metrics/codec.js';
import { JobStore, type Job, type Task } from '../src/modules/jobs/store.js';
import { AuthStore } from '../src/modules/auth/store.js';
import { AuditLog } from '../src/modules/audit/log.js';
import { TestClock } from '../src/clock.js';
import { SecretBox } from '../src/secret-box.js';
import { randomBytes } from 'node:crypto';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url)); // dist/test/ -> src/
const BOUND_MS = 400;

/** `file:method` of every method in packages/hub/src whose body opens a transaction. */
function methodsWithTransactions(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const lines = readFileSync(p, 'utf8').split('\n');
        lines.forEach((l, i) => {
          if (!/\.transaction\(\)/.test(l)) return;
          // The enclosing class member: the nearest line above at two spaces of indentation.
          for (let j = i; j >= 0; j--) {
            const m = /^ {2}(?:private |public |protected )?(?:static )?(?:async )?([A-Za-z_]\w*)\s*[(<]/.exec(lines[j]!);
            if (m) {
              found.add(`${relative(SRC, p)}:${m[1]}`);
              return;
            }
          }
          found.add(`${relative(SRC, p)}:?${i + 1}`);
        });
      }
    }
  };
  walk(SRC);
  return [...found].sort();
}

const DRIVEN = [
  'modules/audit/log.ts:append',
  'modules/auth/store.ts:enableTotp',
  'modules/jobs/store.ts:createJob',
  'modules/jobs/store.ts:save',
  'modules/metrics/store.ts:compactHour',
];

test('every store method that opens a transaction is driven by this file', () => {
  assert.deepEqual(methodsWithTransactions(), DRIVEN, 'a method opens a transaction that this test does not drive on a one-connection database: add it below');
});

/** Runs `fn` on a fresh database with one connection and BOUND_MS to get it. */
async function onOneConnection(engine: 'sqlite' | 'postgres', fn: (h: DbHandle) => Promise<void>): Promise<void> {
  const { h, cleanup } = await testDb(engine, { poolSize: 1, acquireTimeoutMs: BOUND_MS });
  try {
    await fn(h);
  } finally {
    await cleanup();
  }
}

for (const engine of ENGINES) {
  describe(`transactions on ${engine}, one connection, ${BOUND_MS} ms to get it`, () => {
    test('the harness catches an escape: a query on the handle inside its own transaction fails fast', () =>
      onOneConnection(engine, async (h) => {
      const t0 = performance.now();
      await assert.rejects(
        h.db.transaction().execute(async (trx) => {
          await sql`select 1`.execute(trx);
          await sql`select 2`.execute(h.db); // the escape
        }),
        (err: Error) => err instanceof DbBusyError && /no .* connection free after/.test(err.message),
      );
      assert.ok(performance.now() - t0 < 5000, 'failed within the bound, not after a long wait');
      // The connection was given back: the database still answers.
      assert.equal(Number((await sql<{ n: number }>`select 3 as n`.execute(h.db)).rows[0]!.n), 3);
      }));

    test('MetricStore.compactHour with nothing cached (a hub just started, an ended hour in the minute tier)', () =>
      onOneConnection(engine, async (h) => {
      const hour = Date.UTC(2026, 11, 7, 11);
      const writer = new MetricStore(h.db, h.sqlite, new TestClock(hour));
      const keys = ['cpu_percent|busy', 'load1'];
      const bucket = (m: number) => ({ ts: hour + m * MINUTE, keys, avg: Float64Array.of(m, 1), min: Float64Array.of(m, 1), max: Float64Array.of(m, 1), count: Float64Array.of(6, 6) });
      await writer.upsertMinutes('h1', [0, 1, 59].map(bucket));
      // A second layout in the same hour, so the hour's rollup needs a layout nobody made yet.
      await writer.upsertMinutes('h1', [{ ts: hour + 30 * MINUTE, keys: ['mem_used_bytes'], avg: Float64Array.of(5), min: Float64Array.of(5), max: Float64Array.of(5), count: Float64Array.of(6) }]);
      // What a restarted hub has: the rows, and a store that has cached none of their layouts.
      const fresh = new MetricStore(h.db, h.sqlite, new TestClock(hour + 2 * HOUR));
      assert.deepEqual(await fresh.hoursToCompact(hour + 2 * HOUR), [{ hostId: 'h1', hour }]);
      await fresh.compactHour('h1', hour);
      assert.deepEqual(await fresh.hoursToCompact(hour + 2 * HOUR), [], 'the hour left the minute tier');
      const m1 = await fresh.read1m('h1', hour, hour + HOUR, () => true);
      assert.deepEqual(m1.get('load1')?.map((p) => p[0]), [0, 1, 59].map((m) => hour + m * MINUTE));
      assert.deepEqual(m1.get('mem_used_bytes')?.map((p) => p[1]), [5]);
      const h1 = await fresh.read1h('h1', hour, hour + HOUR, () => true);
      assert.deepEqual(h1.get('cpu_percent|busy'), [[hour, 20, 0, 59]]);
      // The layout made inside the transaction was committed with it and reads back by id.
      const again = new MetricStore(h.db, h.sqlite);
      assert.deepEqual((await again.read1h('h1', hour, hour + HOUR, () => true)).get('mem_used_bytes'), [[hour, 5, 5, 5]]);
      }));

    test('JobStore.createJob and JobStore.save', () =>
      onOneConnection(engine, async (h) => {
      const store = new JobStore(h.db);
      const now = Date.UTC(2026, 11, 7, 12);
      const job: Job = { id: 'j1', name: 'uname', kind: 'exec', spec: { command: 'uname' }, target: { ids: ['h1', 'h2'] }, strategy: { kind: 'parallel' }, state: 'running', createdBy: 'admin', createdAt: now, endedAt: null, hostCount: 2, callbackUrl: null, message: null };
      const task = (i: number): Task => ({ id: `t${i}`, jobId: 'j1', hostId: `h${i}`, hostname: `web-${i}`, idx: i, batch: 0, phase: 'main', state: 'pending', status: null, exitCode: null, signal: null, error: null, stdout: null, stderr: null, stdoutBytes: 0, stderrBytes: 0, truncated: false, pid: null, createdAt: now, sentAt: null, startedAt: null, endedAt: null });
      const tasks = [task(1), task(2)];
      await store.createJob(job, tasks);
      tasks[0] = { ...tasks[0]!, state: 'done', status: 'exited', exitCode: 0, stdout: 'Linux\n', endedAt: now + 1000 };
      await store.save(tasks, [{ ...job, state: 'succeeded', endedAt: now + 1000 }]);
      assert.equal((await store.getJob('j1'))?.state, 'succeeded');
      }));

    test('AuthStore.enableTotp', () =>
      onOneConnection(engine, async (h) => {
      const auth = new AuthStore(h.db, new SecretBox(randomBytes(32)));
      const now = Date.UTC(2026, 11, 7, 12);
      const u = await auth.createUser('ops', 'a-long-password', 'operator', now);
      await auth.enableTotp(u.id, 'JBSWY3DPEHPK3PXP', 1, ['a'.repeat(64), 'b'.repeat(64)], now);
      assert.equal(await auth.recoveryCodesLeft(u.id), 2);
      }));

    test('AuditLog.record (the chain append)', () =>
      onOneConnection(engine, async (h) => {
      const audit = new AuditLog(h.db);
      await Promise.all([1, 2, 3].map((i) => audit.record({ actor: 'admin', authMethod: 'session-cookie', action: `test ${i}`, outcome: 'ok' })));
      assert.deepEqual(await audit.verify(), { ok: true, entries: 3, headSeq: 3, problems: [] });
      }));
  });
}
