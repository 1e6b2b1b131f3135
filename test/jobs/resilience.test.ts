/**
 * Nothing lost, nothing twice: 100 tasks in flight on ten namespace hosts, then the hub is killed
 * (SIGKILL: no goodbye, no final flush) and restarted while half the hosts are cut off for 30 s.
 * Each command appends one line to a ledger when it finishes; afterwards every task has exactly
 * one result and the ledger has exactly one line per task.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestHub, writeAgentConfig, tempDir, testDatabases, waitFor } from '@tether/testkit';
import { startNetnsFleet, type NetnsFleet } from '../fleet/netns.js';

type Task = { id: string; hostname: string; state: string; status: string | null; ok: boolean | null };
type Job = { job: { id: string; state: string; counts: Record<string, number> }; tasks: Task[] };

const HOSTS = 10;
const JOBS = 10;
const PARTITION_SEC = 30;

for (const db of testDatabases()) {
  describe(`exactly once across a hub restart and a ${PARTITION_SEC} s partition (${db})`, () => {
    let hub: TestHub;
    let fleet: NetnsFleet;
    const dir = tempDir('tether-resilience-');
    const ledger = join(dir, 'ledger');

    before(async () => {
      hub = await TestHub.start({ db, listen: '0.0.0.0:0', heartbeat: '1s', env: { TETHER_RECONNECT_GRACE: '60s' } });
      const config = writeAgentConfig(dir, { capabilities: ['metrics', 'exec'] });
      fleet = await startNetnsFleet({ count: HOSTS, hubPort: hub.port, reconnectCap: 2, token: await hub.enrollToken({ singleUse: false }), agentExtraArgs: ['--config', config] });
      await waitFor(async () => (await hub.hosts('?status=online')).total === HOSTS, `${HOSTS} hosts online`, 60_000);
    });
    after(async () => {
      for (const h of fleet?.hosts ?? []) await h.healNetwork().catch(() => {});
      await fleet?.stop();
      await hub?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    test(`${JOBS} jobs × ${HOSTS} hosts: every result arrives once, no task runs twice`, async (t) => {
      const jobs: Job[] = [];
      for (let k = 0; k < JOBS; k++) {
        jobs.push(
          await hub.api<Job>('POST', '/api/v1/exec', {
            target: { glob: 'ns-*' },
            // Finishes while the hub is away, so its result must wait in the agent's outbox.
            command: ['sh', '-c', `sleep 8; echo "${k} $(hostname) $TETHER_TASK_ID" >> ${ledger}`],
            mode: 'async',
            name: `job-${k}`,
          }),
        );
      }
      const ids = jobs.map((j) => j.job.id);
      const allTasks = async () => (await Promise.all(ids.map((id) => hub.api<Job>('GET', `/api/v1/jobs/${id}?output=false`)))).flatMap((j) => j.tasks);
      await waitFor(async () => (await allTasks()).filter((x) => x.state === 'running').length === JOBS * HOSTS, '100 tasks running', 30_000);
      t.diagnostic(`${JOBS * HOSTS} tasks running; cutting ${HOSTS / 2} hosts off and killing the hub`);

      const cut = fleet.hosts.slice(0, HOSTS / 2);
      await Promise.all(cut.map((h) => h.cutNetwork()));
      await hub.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 3000));
      await hub.restart();
      // The reachable half reconnects to the new hub; the cut half finishes its commands unreachable.
      await new Promise((r) => setTimeout(r, (PARTITION_SEC - 3) * 1000));
      await Promise.all(cut.map((h) => h.healNetwork()));
      t.diagnostic('network healed');

      await waitFor(async () => {
        const states = await Promise.all(ids.map(async (id) => (await hub.api<Job>('GET', `/api/v1/jobs/${id}?output=false`)).job.state));
        return states.every((s) => s !== 'running');
      }, 'all jobs ended', 90_000);
      const tasks = await allTasks();
      assert.equal(tasks.length, JOBS * HOSTS);
      const bad = tasks.filter((x) => !x.ok);
      assert.deepEqual(bad, [], 'every task succeeded');
      for (const id of ids) assert.equal((await hub.api<Job>('GET', `/api/v1/jobs/${id}?output=false`)).job.state, 'succeeded');

      const lines = readFileSync(ledger, 'utf8').trim().split('\n');
      assert.equal(lines.length, JOBS * HOSTS, 'each command ran exactly once');
      assert.equal(new Set(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).size, JOBS * HOSTS, 'one line per (job, host)');
      assert.deepEqual(new Set(lines.map((l) => l.split(' ')[2])), new Set(tasks.map((x) => x.id)), 'and they are exactly the hub’s tasks');
    });
  });
}
