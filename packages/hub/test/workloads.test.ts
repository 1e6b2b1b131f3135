// Container and unit reports → anomaly signals: restarts counted from the restart count (or a newer
// start), OOM kills once, unhealthy and failed as levels that drop back to 0 — also for an alert the
// hub restored after a restart.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { AnomalySink, AnomalySource } from '../src/modules/alerts/anomaly.js';
import { loadHubConfig } from '../src/config.js';
import { createHub } from '../src/server.js';
import type { ContainerStatus } from '@tether/protocol';
import { WorkloadService, WorkloadSource } from '../src/modules/workloads/service.js';

function recorder() {
  const got: string[] = [];
  return {
    got,
    sink: {
      level: (h: string, s: string, subj: string, v: number) => void got.push(`level ${h} ${s} ${subj} ${v}`),
      event: (h: string, e: string, subj: string) => void got.push(`event ${h} ${e} ${subj}`),
      levels: (h: string, s: string, cur: readonly { subject: string; value: number }[]) => void got.push(`levels ${h} ${s} [${cur.map((c) => `${c.subject}=${c.value}`).join(' ')}]`),
    },
  };
}

const c = (over: Partial<ContainerStatus>): ContainerStatus => ({ id: 'a1', name: 'web', image: 'img', state: 'running', status: 'Up 1 hour', restartCount: 0, oomKilled: false, exitCode: 0, startedAt: 1000, ...over });

test('restart-count increases become one container_restart event per restart; the first sighting counts none', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w, () => 10_000_000).start(r.sink);
  w.handleReport('h1', 'report.containers', { ts: 1, containers: [c({ restartCount: 4 })], truncated: true });
  assert.deepEqual(r.got, []);
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ restartCount: 6, startedAt: 2000 })], truncated: true });
  assert.deepEqual(r.got, ['event h1 container_restart web', 'event h1 container_restart web']);
  r.got.length = 0;
  w.handleReport('h1', 'report.containers', { ts: 3, containers: [c({ restartCount: 6, startedAt: 3000 })], truncated: true });
  assert.deepEqual(r.got, ['event h1 container_restart web'], 'a newer start without a count is one restart');
  r.got.length = 0;
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ restartCount: 99 })], truncated: false });
  assert.deepEqual(r.got, [], 'an older report is ignored');
  assert.equal(w.latestContainers('h1')!.ts, 3);
  r.got.length = 0;
  w.handleReport('h1', 'report.containers', { ts: 4, containers: [c({ id: 'n1', name: 'new', restartCount: 0, startedAt: undefined })], truncated: true });
  w.handleReport('h1', 'report.containers', { ts: 5, containers: [c({ id: 'n1', name: 'new', restartCount: 12, startedAt: 9000 })], truncated: true });
  assert.deepEqual(r.got, [], 'a count not known before (listed only, not inspected) is not a jump of 12 restarts');
});

test('OOM kill is one event when the flag turns on; unhealthy is a level that returns to 0, also when the container is removed', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w, () => 10_000_000).start(r.sink);
  w.handleReport('h1', 'report.containers', { ts: 1, containers: [c({}), c({ id: 'b2', name: 'db', health: 'healthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 2, containers: [c({ oomKilled: true, state: 'exited', exitCode: 137, finishedAt: 5000 }), c({ id: 'b2', name: 'db', health: 'unhealthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 3, containers: [c({ oomKilled: true, state: 'exited', exitCode: 137, finishedAt: 5000 }), c({ id: 'b2', name: 'db', health: 'unhealthy' })], truncated: false });
  w.handleReport('h1', 'report.containers', { ts: 4, containers: [], truncated: false });
  assert.deepEqual(r.got, ['levels h1 container_unhealthy []', 'event h1 container_oom web', 'levels h1 container_unhealthy [db=1]', 'levels h1 container_unhealthy [db=1]', 'levels h1 container_unhealthy []']);
  r.got.length = 0;
  // A truncated list speaks only for what it holds.
  w.handleReport('h1', 'report.containers', { ts: 5, containers: [c({ id: 'b2', name: 'db', health: 'unhealthy' })], truncated: true });
  w.handleReport('h1', 'report.containers', { ts: 6, containers: [c({ id: 'b2', name: 'db', health: 'healthy' })], truncated: true });
  assert.deepEqual(r.got, ['level h1 container_unhealthy db 1', 'level h1 container_unhealthy db 0']);
});

test('failed units are level 1 while listed; a complete list says every other unit is 0, a truncated one does not', () => {
  const w = new WorkloadService();
  const r = recorder();
  new WorkloadSource(w).start(r.sink);
  const u = (unit: string) => ({ unit, load: 'loaded', active: 'failed', sub: 'failed', description: '' });
  w.handleReport('h1', 'report.units', { ts: 1, failed: [u('a.service'), u('b.service')], truncated: false });
  w.handleReport('h1', 'report.units', { ts: 2, failed: [u('a.service')], truncated: true });
  w.handleReport('h1', 'report.units', { ts: 3, failed: [], truncated: false });
  assert.deepEqual(r.got, ['levels h1 unit_failed [a.service=1 b.service=1]', 'level h1 unit_failed a.service 1', 'levels h1 unit_failed []']);
});

test('after a hub restart, a restored failed-unit alert resolves with the first complete list that does not name the unit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-workloads-'));
  const start = () => createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir }, { TETHER_ADMIN_PASSWORD: 'pw-workloads-test', TETHER_ALERT_EVAL_INTERVAL: '0.05s' }), { log: pino({ level: 'silent' }) });
  const source = () => {
    const s: { sink?: AnomalySink } = {};
    return { s, src: { name: 'units (test)', feeds: ['unit_failed'], start: (k: AnomalySink) => void (s.sink = k), stop: () => {} } satisfies AnomalySource };
  };
  try {
    let hub = await start();
    const one = source();
    hub.alerts.addSource(one.src);
    const rule = await hub.alerts.createRule({ name: 'unit failed', anomaly: 'systemd_unit_failed', forSec: 0, resolveForSec: 0 });
    one.s.sink!.levels('h1', 'unit_failed', [{ subject: 'x.service', value: 1 }]);
    assert.equal(hub.alerts.active().find((a) => a.ruleId === rule.id)?.state, 'firing');
    await hub.alerts.settled();
    await hub.stop();

    hub = await start();
    try {
      const two = source();
      hub.alerts.addSource(two.src);
      assert.equal(hub.alerts.active().find((a) => a.ruleId === rule.id)?.subject, 'x.service', 'restored as firing');
      two.s.sink!.levels('h1', 'unit_failed', [{ subject: 'y.service', value: 1 }]);
      const active = hub.alerts.active().filter((a) => a.ruleId === rule.id);
      assert.deepEqual(active.map((a) => [a.subject, a.state]), [['y.service', 'firing']]);
      await hub.alerts.settled();
      const hist = await hub.alerts.store.history({ limit: 10 });
      assert.deepEqual(hist.filter((h) => h.subject === 'x.service').map((h) => h.state), ['resolved']);
    } finally {
      await hub.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
