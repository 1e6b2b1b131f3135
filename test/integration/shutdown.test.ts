/**
 * SIGTERM ends a busy hub within 10 s whatever is in flight, and nothing it had committed is lost.
 * In flight here: a command the hub waits on for a synchronous answer, a browser's live socket, an
 * agent reporting and, on PostgreSQL, writes that cannot finish because another session holds the
 * tables they write (the metrics flush and the audit append wait on locks that are never released
 * while the hub runs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import WebSocket from 'ws';
import { TestAgent, TestHub, testDatabases, waitFor } from '@tether/testkit';

for (const db of testDatabases()) {
  test(`SIGTERM stops a busy hub within 10 s and a restart finds everything it committed (${db})`, async () => {
    const hub = await TestHub.start({ db });
    const agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec'] });
    let locker: pg.Client | undefined;
    try {
      const id = await agent.waitConnected();
      // Committed and answered before the signal.
      const kept = await hub.api('POST', '/api/v1/exec', { target: { hosts: [id] }, command: ['echo', 'kept'], wait: 30 });
      assert.equal(kept.tasks[0].stdout, 'kept\n');
      await hub.api('PATCH', `/api/v1/hosts/${id}`, { labels: { stage: 'before-sigterm' } });
      await waitFor(async () => (await hub.api('GET', `/api/v1/hosts/${id}/latest`)).ts > 0, 'a usage report ingested');
      const auditBefore = (await hub.api('GET', '/api/v1/audit?limit=1000')).entries as { seq: number }[];

      // In flight.
      const slow = hub.raw('POST', '/api/v1/exec', { target: { hosts: [id] }, command: ['sleep', '30'], wait: 60 }).then((r) => r.status, (err: Error) => err.message);
      const live = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${hub.token}` } });
      await new Promise((res, rej) => live.once('open', res).once('error', rej));
      live.send(JSON.stringify({ op: 'subscribe', hosts: '*' }));
      let stuckWrite: Promise<unknown> = Promise.resolve();
      if (db === 'postgres') {
        locker = new pg.Client({ connectionString: hub.dbUrl.replace(/\?schema=.*/, ''), options: `-c search_path=${new URL(hub.dbUrl).searchParams.get('schema')}` });
        await locker.connect();
        await locker.query('begin');
        await locker.query('lock table metric_raw, audit_log, hosts in access exclusive mode');
        // A mutating call that cannot commit (its table is locked), and whose audit entry could not be written either.
        stuckWrite = hub.raw('PATCH', `/api/v1/hosts/${id}`, { labels: { stage: 'stuck' } }).then((r) => r.status, (err: Error) => err.message);
        // Until the hub's own writes wait on the locks (the host update, and a flush of agent reports).
        await waitFor(async () => Number((await locker!.query("select count(*) as n from pg_locks where not granted")).rows[0].n) >= 2, 'hub writes waiting on the locks');
      }
      await waitFor(async () => ((await hub.api('GET', '/api/v1/jobs?state=running')).jobs as unknown[]).length === 1, 'the slow command running');

      const t0 = performance.now();
      await hub.kill('SIGTERM');
      const code = hub.proc.exitCode;
      const ms = performance.now() - t0;
      assert.ok(ms < 10_000, `the hub exited ${Math.round(ms)} ms after SIGTERM`);
      assert.notEqual(code, null, 'it exited by itself, not by the test harness SIGKILL');
      if (db === 'sqlite') assert.equal(code, 0, 'everything in flight ended in time: a clean stop');
      else {
        assert.equal(code, 1, 'work left in flight: the hub says so with its exit status');
        assert.match(hub.proc.output(), /hub stopped with work still in flight/);
      }
      // On PostgreSQL its answer waits for its audit entry, which the lock holds: the connection is cut.
      if (db === 'sqlite') assert.equal(await slow, 202, 'the caller waiting on a running command got its answer: 202, the job still running');
      else await slow;
      await stuckWrite;
      live.terminate();
      if (locker) {
        await locker.query('rollback');
        await locker.end();
        locker = undefined;
      }

      await hub.restart();
      const job = await hub.api('GET', `/api/v1/jobs/${kept.job.id}`);
      assert.equal(job.job.state, 'succeeded', 'the finished job is there');
      assert.equal(job.tasks[0].stdout, 'kept\n');
      const host = await hub.api('GET', `/api/v1/hosts/${id}`);
      assert.equal(host.labels.stage, 'before-sigterm', 'the last committed change, not the one that never committed');
      const auditAfter = (await hub.api('GET', '/api/v1/audit?limit=1000')).entries as { seq: number }[];
      for (const e of auditBefore) assert.ok(auditAfter.some((x) => x.seq === e.seq), `audit entry ${e.seq} kept`);
      assert.equal((await hub.api('GET', '/api/v1/audit/verify')).ok, true, 'the audit chain is whole');
    } finally {
      if (locker) await locker.end().catch(() => {});
      await agent.stop();
      agent.cleanup();
      await hub.cleanup();
    }
  });
}
