/**
 * The audit log's hash chain: appends stay one chain under concurrency (also from two hubs on one
 * PostgreSQL), secrets are redacted, and verify() names an edited row, a deleted row and a cut tail.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { ENGINES, PG, testDb } from './db.js';
import { openDatabase, type DbHandle } from '../src/db/database.js';
import { AuditLog, redact } from '../src/modules/audit/log.js';

for (const engine of ENGINES) {
  describe(`audit log (${engine})`, () => {
    let h: DbHandle;
    let cleanup: () => Promise<void>;
    before(async () => ({ h, cleanup } = await testDb(engine)));
    after(() => cleanup());

    test('concurrent appends form one unbroken chain', async () => {
      const log = new AuditLog(h.db);
      const entries = await Promise.all(Array.from({ length: 60 }, (_, i) => log.record({ actor: `u${i % 3}`, authMethod: 'session-bearer', ip: '10.0.0.1', action: 'POST /api/v1/things', targets: [`h${i % 5}`], params: { i }, outcome: 'ok', status: 200 })));
      assert.deepEqual(entries.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1));
      const v = await log.verify();
      assert.deepEqual(v, { ok: true, entries: 60, headSeq: 60, problems: [] });
    });

    if (engine === 'postgres') {
      test('two hubs appending to one database do not fork the chain', async () => {
        const other: DbHandle = await openDatabase(`${PG}${PG.includes('?') ? '&' : '?'}schema=${h.schema}`);
        try {
          const a = new AuditLog(h.db);
          const b = new AuditLog(other.db);
          await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record({ actor: 'x', authMethod: 'system', action: 'race', outcome: 'ok' })));
          const v = await a.verify();
          assert.equal(v.ok, true, JSON.stringify(v.problems));
          assert.equal(v.entries, 100);
        } finally {
          await other.close();
        }
      });
    }

    test('parameters are stored with secrets redacted', async () => {
      const log = new AuditLog(h.db);
      const e = await log.record({ actor: 'admin', authMethod: 'session-cookie', action: 'POST /api/v1/users', params: { body: { username: 'bob', password: 'hunter2hunter2', nested: { apiToken: 'tta_x', code: '123456' }, labels: { env: 'prod' } } }, outcome: 'ok', status: 200 });
      const [stored] = await log.query({ action: 'POST /api/v1/users' });
      assert.equal(stored!.seq, e.seq);
      const text = JSON.stringify(stored!.params);
      assert.doesNotMatch(text, /hunter2|tta_x|123456/);
      assert.deepEqual(stored!.params, { body: { username: 'bob', password: '[redacted]', nested: { apiToken: '[redacted]', code: '[redacted]' }, labels: { env: 'prod' } } });
      assert.match(String(redact('x'.repeat(5000))), /\[5000 chars\]/);
      assert.deepEqual(redact({ body: Buffer.alloc(70_000), n: 1 }), { body: '[binary, 70000 bytes]', n: 1 }, 'uploads are recorded by size');
    });

    test('query by actor, host, action prefix and time', async () => {
      const log = new AuditLog(h.db);
      const t0 = Date.now() + 10_000_000;
      await log.record({ actor: 'carol', authMethod: 'api-token', action: 'POST /api/v1/exec', targets: ['host_a', 'host%b'], outcome: 'ok', ts: t0 });
      await log.record({ actor: 'carol', authMethod: 'api-token', action: 'POST /api/v1/jobs', targets: ['hostXa'], outcome: 'denied', ts: t0 + 1000 });
      assert.equal((await log.query({ actor: 'carol' })).length, 2);
      assert.deepEqual((await log.query({ host: 'host_a' })).map((e) => e.action), ['POST /api/v1/exec'], '_ is not a wildcard');
      assert.equal((await log.query({ host: 'host%b' })).length, 1);
      assert.equal((await log.query({ action: 'POST /api/v1/j*' })).length, 1);
      assert.equal((await log.query({ actor: 'carol', from: t0 + 500 })).length, 1);
      assert.equal((await log.query({ actor: 'carol', to: t0 + 500 })).length, 1);
    });

    test('verify names an edited row, a deleted row, and deleted newest rows', async () => {
      const log = new AuditLog(h.db);
      for (let i = 0; i < 5; i++) await log.record({ actor: 'dave', authMethod: 'session-bearer', action: `step ${i}`, outcome: 'ok' });
      assert.equal((await log.verify()).ok, true);
      const rows = await log.query({ actor: 'dave', order: 'asc' });
      const [a, b, , , e] = rows.map((r) => r.seq);

      await sql`update audit_log set outcome = 'denied' where seq = ${a}`.execute(h.db);
      let v = await log.verify();
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems.map((p) => p.seq), [a]);
      assert.match(v.problems[0]!.problem, /altered/);
      await sql`update audit_log set outcome = 'ok' where seq = ${a}`.execute(h.db);
      assert.equal((await log.verify()).ok, true, 'restoring the row restores the chain');

      await sql`delete from audit_log where seq = ${b}`.execute(h.db);
      v = await log.verify();
      assert.equal(v.ok, false);
      assert.ok(v.problems.some((p) => p.seq === b! + 1 && /missing/.test(p.problem)), JSON.stringify(v.problems));
      assert.ok(v.problems.some((p) => p.seq === b! + 1 && /link/.test(p.problem)), JSON.stringify(v.problems));

      await sql`delete from audit_log where seq = ${e}`.execute(h.db);
      v = await log.verify();
      assert.ok(v.problems.some((p) => /missing at the end/.test(p.problem)), JSON.stringify(v.problems));
    });
  });
}
