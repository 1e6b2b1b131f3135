// Container and unit reports → anomaly signals: restarts counted from the restart count (or a newer
// start), OOM kills once, unhealthy and failed as levels that drop back to 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerStatus } from '@tether/protocol';
import { WorkloadService, WorkloadSource } from '../src/modules/workloads/service.js';

function recorder() {
  const got: string[] = [];
  return {
    got,
    sink: {
      level: (h: string, s: string, subj: string, v: number) => void got.push(`level ${h} ${s} ${subj} ${v}`),
      event: (h: string, e: string, subj: string) => void got.push(`event ${h} ${e} ${subj}`),
    },
  };
}

const c = (over: Partial<ContainerStatus>): ContainerStatus => ({ id: 'a1', name: 'web', image: 'img', state: 'running', status: 'Up 1 hour', restartCount: 0, oomKilled: false, exitCode: 0, startedAt: 1000, ...over });

test('restart-count increases become one container_restart event per restart; the first sighting counts none', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w, () => 10_000_000).start(r.sink);
  w.handleReport('h1', 'report.containers', { ts: 1, containers: [c({ restartCount: 4 })], truncated: false });
  assert.deepEqual(r.got, []);
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ restartCount: 6, startedAt: 2000 })], truncated: false });
  assert.deepEqual(r.got, ['event h1 container_restart web', 'event h1 container_restart web']);
  r.got.length = 0;
  w.handleReport('h1', 'report.containers', { ts: 3, containers: [c({ restartCount: 6, startedAt: 3000 })], truncated: false });
  assert.deepEqual(r.got, ['event h1 container_restart web'], 'a newer start without a count is one restart');
  r.got.length = 0;
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ restartCount: 99 })], truncated: false });
  assert.deepEqual(r.got, [], 'an older report is ignored');
  assert.equal(w.latestContainers('h1')!.ts, 3);
});

test('OOM kill is one event when the flag turns on; unhealthy is a level that returns to 0, also when the container is removed', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w, () => 10_000_000).start(r.sink);
  w.handleReport('h1', 'report.containers', { ts: 1, containers: [c({}), c({ id: 'b2', name: 'db', health: 'healthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ oomKilled: true, state: 'exited', exitCode: 137, finishedAt: 5000 }), c({ id: 'b2', name: 'db', health: 'unhealthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 3, containers: [c({ oomKilled: true, state: 'exited', exitCode: 137, finishedAt: 5000 }), c({ id: 'b2', name: 'db', health: 'unhealthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 4, containers: [], truncated: false });
  assert.deepEqual(r.got, ['event h1 container_oom web', 'level h1 container_unhealthy db 1', 'level h1 container_unhealthy db 1', 'level h1 container_unhealthy db 0']);
});

test('failed units are level 1 while listed and 0 once they leave a complete list', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w).start(r.sink);
  const u = (unit: string) => ({ unit, load: 'loaded', active: 'failed', sub: 'failed', description: '' });
  w.handleReport('h1', 'report.units', { ts: 1, failed: [u('a.service'), u('b.service')], truncated: false });
  w.handleReport('h1', 'report.units', { ts: 2, failed: [u('a.service')], truncated: true });
  w.handleReport('h1', 'report.units', { ts: 3, failed: [], truncated: false });
  assert.deepEqual(r.got, [
    'level h1 unit_failed a.service 1',
    'level h1 unit_failed b.service 1',
    'level h1 unit_failed a.service 1',
    'level h1 unit_failed a.service 0',
  ]);
});
