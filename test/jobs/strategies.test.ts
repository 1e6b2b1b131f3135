/**
 * Job strategies on six real agents, each in its own network and UTS namespace (own address, own
 * hostname ns-1 … ns-6), so that a command can fail on chosen hosts by name.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestHub, writeAgentConfig, tempDir, waitFor } from '@tether/testkit';
import { startNetnsFleet, type NetnsFleet } from '../fleet/netns.js';

type Task = { hostname: string; state: string; status: string | null; ok: boolean | null; phase: string; batch: number; startedAt: number; endedAt: number; error: string | null };
type Job = { job: { id: string; state: string; message: string | null; counts: Record<string, number> }; tasks: Task[] };

const HOSTS = ['ns-1', 'ns-2', 'ns-3', 'ns-4', 'ns-5', 'ns-6'];
/** Fails on the named hosts, after a pause long enough for overlaps to show. */
const failOn = (names: string[], pause = 0.3) => ['sh', '-c', `sleep ${pause}; case "$(hostname)" in ${names.length ? names.join('|') : '__none__'}) exit 7;; esac`];

describe('job strategies on six namespace hosts', () => {
  let hub: TestHub;
  let fleet: NetnsFleet;
  const cfgDir = tempDir('tether-jobs-cfg-');

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '2s', env: { TETHER_RECONNECT_GRACE: '1s' } });
    const config = writeAgentConfig(cfgDir, { capabilities: ['metrics', 'exec'] });
    fleet = await startNetnsFleet({ count: 6, hubPort: hub.port, token: await hub.enrollToken({ singleUse: false }), agentExtraArgs: ['--config', config] });
    await waitFor(async () => (await hub.hosts('?status=online')).total === 6, '6 hosts online', 60_000);
  });
  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  const runJob = async (command: string[], strategy: Record<string, unknown>, hosts = HOSTS): Promise<Job> => {
    const r = await hub.api<Job>('POST', '/api/v1/exec', { target: { hosts }, command, strategy, mode: 'async' });
    await waitFor(async () => (await hub.api<Job>('GET', `/api/v1/jobs/${r.job.id}`)).job.state !== 'running', `job ${r.job.id} ends`, 60_000);
    const j = await hub.api<Job>('GET', `/api/v1/jobs/${r.job.id}`);
    j.tasks.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.phase.localeCompare(b.phase));
    return j;
  };
  const main = (j: Job) => j.tasks.filter((t) => t.phase === 'main');
  const by = (j: Job, name: string, phase = 'main') => j.tasks.find((t) => t.hostname === name && t.phase === phase)!;
  /** the most tasks running at the same moment */
  const peak = (ts: Task[]) => {
    const ev = ts.filter((t) => t.startedAt).flatMap((t) => [[t.startedAt, 1] as const, [t.endedAt, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let cur = 0;
    let max = 0;
    for (const [, d] of ev) max = Math.max(max, (cur += d));
    return max;
  };

  test('sequence: one host at a time, in order, stopping at the first failure', async () => {
    const j = await runJob(failOn(['ns-3']), { kind: 'sequence' });
    assert.equal(j.job.state, 'failed');
    assert.deepEqual(main(j).map((t) => t.status), ['exited', 'exited', 'exited', 'skipped', 'skipped', 'skipped']);
    assert.deepEqual(main(j).map((t) => t.ok), [true, true, false, null, null, null]);
    const ran = main(j).slice(0, 3);
    for (let i = 1; i < ran.length; i++) assert.ok(ran[i]!.startedAt >= ran[i - 1]!.endedAt, `${ran[i]!.hostname} started after ${ran[i - 1]!.hostname} ended`);
    assert.match(j.job.message!, /stopped: 1 host/);
  });

  test('sequence with continue-on-error runs every host', async () => {
    const j = await runJob(failOn(['ns-3'], 0.05), { kind: 'sequence', continueOnError: true });
    assert.equal(j.job.state, 'failed');
    assert.deepEqual(main(j).map((t) => t.ok), [true, true, false, true, true, true]);
    assert.equal(peak(main(j)), 1);
  });

  test('parallel with a concurrency limit never runs more than the limit at once', async () => {
    const j = await runJob(failOn([], 0.5), { kind: 'parallel', concurrency: 2 });
    assert.equal(j.job.state, 'succeeded');
    assert.equal(j.job.counts.succeeded, 6);
    assert.equal(peak(main(j)), 2);
    const all = await runJob(failOn(['ns-2'], 0.5), { kind: 'parallel' });
    assert.equal(all.job.state, 'failed');
    assert.equal(peak(main(all)), 6, 'without a limit, all at once');
    assert.deepEqual(main(all).map((t) => t.ok), [true, false, true, true, true, true], 'a failure does not stop a parallel job');
  });

  test('evenodd: the first half (hosts 1, 3, 5) ends before the second starts', async () => {
    const j = await runJob(failOn([], 0.3), { kind: 'evenodd' });
    assert.equal(j.job.state, 'succeeded');
    const first = ['ns-1', 'ns-3', 'ns-5'].map((n) => by(j, n));
    const second = ['ns-2', 'ns-4', 'ns-6'].map((n) => by(j, n));
    assert.ok(Math.min(...second.map((t) => t.startedAt)) >= Math.max(...first.map((t) => t.endedAt)));
    assert.equal(peak(first), 3);
    const stop = await runJob(failOn(['ns-3']), { kind: 'evenodd' });
    assert.deepEqual(['ns-2', 'ns-4', 'ns-6'].map((n) => by(stop, n).status), ['skipped', 'skipped', 'skipped']);
  });

  test('rolling: batches of two, stopping once failures exceed the threshold', async () => {
    // ns-3 and ns-4 (batch 2) fail: 2 failures > 1 allowed, so batch 3 never starts.
    const j = await runJob(failOn(['ns-3', 'ns-4']), { kind: 'rolling', batchSize: 2, maxFailures: 1 });
    assert.equal(j.job.state, 'failed');
    assert.deepEqual(main(j).map((t) => t.batch), [0, 0, 1, 1, 2, 2]);
    assert.deepEqual(main(j).map((t) => t.status), ['exited', 'exited', 'exited', 'exited', 'skipped', 'skipped']);
    assert.ok(by(j, 'ns-3').startedAt >= Math.max(by(j, 'ns-1').endedAt, by(j, 'ns-2').endedAt), 'batch 2 after batch 1');
    assert.match(j.job.message!, /2 host\(s\) failed, more than the 1 allowed/);
    // One failure is within the threshold: the job goes on to the end.
    const within = await runJob(failOn(['ns-3']), { kind: 'rolling', batchPercent: 50, maxFailures: 1 });
    assert.deepEqual(main(within).map((t) => t.batch), [0, 0, 0, 1, 1, 1]);
    assert.equal(within.job.counts.succeeded, 5);
    assert.equal(main(within).filter((t) => t.status === 'skipped').length, 0);
  });

  test('rolling with a health command between batches: a failing check stops the rollout', async () => {
    const j = await runJob(failOn([], 0.05), {
      kind: 'rolling',
      batchSize: 3,
      health: { command: ['sh', '-c', 'test "$(hostname)" != ns-2'] },
    });
    assert.equal(j.job.state, 'failed');
    const checks = j.tasks.filter((t) => t.phase === 'health');
    assert.deepEqual(checks.map((t) => [t.hostname, t.ok]), [['ns-1', true], ['ns-2', false], ['ns-3', true]]);
    assert.deepEqual(['ns-4', 'ns-5', 'ns-6'].map((n) => by(j, n).status), ['skipped', 'skipped', 'skipped']);
    for (const c of checks) assert.ok(c.startedAt >= by(j, c.hostname).endedAt);
  });

  test('cancel: nothing new starts, the running task gets SIGTERM, the job ends cancelled', async () => {
    const r = await hub.api<Job>('POST', '/api/v1/exec', { target: { hosts: HOSTS }, command: ['sleep', '30'], strategy: { kind: 'sequence' }, mode: 'async' });
    await waitFor(async () => (await hub.api<Job>('GET', `/api/v1/jobs/${r.job.id}`)).tasks.some((t) => t.state === 'running'), 'first task running', 15_000);
    assert.deepEqual(await hub.api('POST', `/api/v1/jobs/${r.job.id}/cancel`), { ok: true });
    await waitFor(async () => (await hub.api<Job>('GET', `/api/v1/jobs/${r.job.id}`)).job.state !== 'running', 'job ends', 15_000);
    const j = await hub.api<Job>('GET', `/api/v1/jobs/${r.job.id}`);
    j.tasks.sort((a, b) => a.hostname.localeCompare(b.hostname));
    assert.equal(j.job.state, 'cancelled');
    assert.equal(by(j, 'ns-1').status, 'killed');
    assert.deepEqual(main(j).slice(1).map((t) => t.status), ['cancelled', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);
    assert.equal((await hub.raw('POST', `/api/v1/jobs/${r.job.id}/cancel`)).status, 409);
  });

  test('a host that is not connected is reported offline; the others run', async () => {
    await fleet.hosts[5]!.stopAgent();
    await waitFor(async () => (await hub.hosts('?status=online')).total === 5, 'ns-6 offline', 20_000);
    const j = await runJob(failOn([], 0.05), { kind: 'parallel' });
    assert.equal(by(j, 'ns-6').status, 'offline');
    assert.equal(j.job.counts.succeeded, 5);
    assert.equal(j.job.state, 'failed');
  });
});
