/**
 * The rules engine with a fake clock (durations, averaging, hysteresis, flapping), derived series,
 * the robot signatures, and the anomaly seam through an in-process hub (a source feeding
 * container events, as the Docker manager will).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Instance, ObsWindow, observe, tick, type EvalRule } from '../src/modules/alerts/evaluator.js';
import { derive, parseMetric } from '../src/modules/alerts/model.js';
import { dingtalkSignedUrl, feishuSign, scrub, secretStrings, webhookSignature } from '../src/modules/alerts/channels.js';
import type { AnomalySink, AnomalySource } from '../src/modules/alerts/anomaly.js';
import { createHub } from '../src/server.js';
import { loadHubConfig } from '../src/config.js';

const rule = (o: Partial<EvalRule> = {}): EvalRule => ({ op: '>', threshold: 90, forSec: 60, resolveForSec: 30, aggregate: 'all', flapCount: 3, flapWindowSec: 600, staleSec: 300, ...o });
const S = 1000;


test('an averaging window: mean of what is in it, old observations dropped (the newest always kept), growth across the ring', () => {
  const w = new ObsWindow();
  assert.ok(Number.isNaN(w.mean()));
  // 100 observations one second apart, values 0..99, keeping the last 30 s: wraps and grows the rings.
  for (let t = 0; t < 100; t++) {
    w.push(t * 1000, t);
    w.dropBefore(t * 1000 - 30_000);
  }
  assert.equal(w.length, 31, 'observations from 69 s to 99 s');
  assert.equal(w.mean(), (69 + 99) / 2);
  w.dropBefore(1e9);
  assert.equal(w.length, 1, 'the newest stays');
  assert.equal(w.mean(), 99);
  w.clear();
  assert.equal(w.length, 0);
  w.push(5, 7);
  assert.equal(w.mean(), 7);
});

test('a breach goes pending, fires only after holding for forSec, and a dip before that starts over', () => {
  const r = rule();
  const i = new Instance('k', 'r', 'h', 'cpu_percent|busy');
  assert.deepEqual(observe(i, r, 95, 0), ['pending']);
  assert.deepEqual(observe(i, r, 96, 30 * S), []);
  assert.deepEqual(observe(i, r, 50, 40 * S), ['cleared'], 'one good sample ends the pending state');
  assert.deepEqual(observe(i, r, 95, 50 * S), ['pending']);
  assert.deepEqual(tick(i, r, 100 * S), [], 'not yet 60 s since it started again');
  assert.deepEqual(tick(i, r, 110 * S), ['firing'], 'the tick fires it even without a new sample');
  assert.equal(i.since, 50 * S);
  assert.equal(i.firedAt, 110 * S);
});

test('a firing alert resolves only after staying clear for resolveForSec, and keeps its peak', () => {
  const r = rule({ forSec: 0 });
  const i = new Instance('k', 'r', 'h', 's');
  assert.deepEqual(observe(i, r, 95, 0), ['pending', 'firing']);
  observe(i, r, 99, 5 * S);
  assert.deepEqual(observe(i, r, 10, 10 * S), []);
  assert.deepEqual(observe(i, r, 97, 20 * S), [], 'back above: the clear period starts over');
  assert.deepEqual(observe(i, r, 10, 30 * S), []);
  assert.deepEqual(tick(i, r, 59 * S), []);
  assert.deepEqual(tick(i, r, 60 * S), ['resolved']);
  assert.equal(i.peak, 99);
  assert.equal(i.endedAt, 60 * S);
  assert.equal(i.endReason, 'cleared');
});

test('"below" rules keep the lowest value as their peak', () => {
  const r = rule({ op: '<', threshold: 14, forSec: 0 });
  const i = new Instance('k', 'r', '', 'tls:443');
  observe(i, r, 10, 0);
  observe(i, r, 7, 1);
  observe(i, r, 9, 2);
  assert.equal(i.peak, 7);
});

test('avg rules fire on the mean over the window once the window is covered', () => {
  const r = rule({ aggregate: 'avg', forSec: 60 });
  const i = new Instance('k', 'r', 'h', 's');
  assert.deepEqual(observe(i, r, 100, 0), ['pending']);
  assert.deepEqual(observe(i, r, 100, 30 * S), []);
  assert.deepEqual(observe(i, r, 80, 60 * S), ['firing'], 'mean of 100, 100, 80 over the full minute');
});

test('avg rules ignore a single spike that a mean does not carry over the threshold', () => {
  const r = rule({ aggregate: 'avg', forSec: 60 });
  const i = new Instance('k', 'r', 'h', 's');
  for (let t = 0; t <= 60; t += 10) observe(i, r, t === 30 ? 100 : 50, t * S);
  assert.equal(i.state, 'inactive');
});

test('an instance that fires again and again is flagged flapping, and steady once the window passes', () => {
  const r = rule({ forSec: 0, resolveForSec: 0, flapCount: 3, flapWindowSec: 600 });
  const i = new Instance('k', 'r', 'h', 's');
  const seen: string[] = [];
  for (let n = 0; n < 3; n++) {
    seen.push(...observe(i, r, 95, n * 20 * S));
    seen.push(...observe(i, r, 10, n * 20 * S + 10 * S));
  }
  assert.deepEqual(seen, ['pending', 'firing', 'resolved', 'pending', 'firing', 'resolved', 'pending', 'flapping', 'firing', 'resolved']);
  assert.equal(i.flapping, true);
  assert.deepEqual(tick(i, r, 500 * S), []);
  assert.deepEqual(tick(i, r, 641 * S), ['steady']);
  assert.equal(i.flapping, false);
});

test('an instance without observations for staleSec ends (series or host gone)', () => {
  const r = rule({ forSec: 0, staleSec: 120 });
  const i = new Instance('k', 'r', 'h', 's');
  observe(i, r, 95, 0);
  assert.deepEqual(tick(i, r, 121 * S), ['resolved']);
  assert.equal(i.endReason, 'stale');
});

test('derived series: inode and swap percentages, load per core, errors per interface', () => {
  const d = derive({ 'fs_inodes_used|/': 25, 'fs_inodes_free|/': 75, 'swap_bytes|total': 200, 'swap_bytes|used': 50, load1: 3, load5: 4, 'cpu_core_busy_percent|0': 1, 'cpu_core_busy_percent|1': 1, 'net_rx_errors_per_second|eth0': 2, 'net_tx_errors_per_second|eth0': 3 });
  assert.deepEqual(d, { 'fs_inodes_used_percent|/': 25, 'net_errors_per_second|eth0': 5, swap_used_percent: 25, load1_per_core: 1.5, load5_per_core: 2 });
  assert.deepEqual(parseMetric('fs_used_percent'), { family: 'fs_used_percent' });
  assert.deepEqual(parseMetric('fs_used_percent|*'), { family: 'fs_used_percent' });
  assert.deepEqual(parseMetric('fs_used_percent|/var'), { family: 'fs_used_percent', dim: '/var' });
  assert.ok('error' in parseMetric('load1|x'));
  assert.ok('error' in parseMetric('nonsense'));
});

test('robot signatures follow DingTalk’s and Feishu’s documented formats; secrets are scrubbed from errors', () => {
  const secret = 'SECabc123';
  const url = dingtalkSignedUrl('https://oapi.dingtalk.com/robot/send?access_token=T0K', secret, 1700000000000);
  const u = new URL(url);
  assert.equal(u.searchParams.get('timestamp'), '1700000000000');
  assert.equal(u.searchParams.get('sign'), createHmac('sha256', secret).update(`1700000000000\n${secret}`).digest('base64'));
  assert.equal(feishuSign(secret, 1700000000), createHmac('sha256', `1700000000\n${secret}`).update('').digest('base64'));
  assert.equal(webhookSignature('k', '{"a":1}'), 'sha256=' + createHmac('sha256', 'k').update('{"a":1}').digest('hex'));
  const ch = { id: 'c', name: 'n', type: 'slack' as const, enabled: true, config: {}, secret: { url: 'https://hooks.slack.com/services/T000/B000/XXXX' }, createdAt: 0, updatedAt: 0 };
  assert.equal(scrub('POST https://hooks.slack.com/services/T000/B000/XXXX failed; path /services/T000/B000/XXXX', secretStrings(ch)), 'POST [secret] failed; path [secret]');
});

test('an anomaly source registered with addSource makes restart-loop alerts that fire and resolve as the window slides', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-alerts-'));
  const hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir }, { TETHER_ADMIN_PASSWORD: 'pw-alerts-test', TETHER_ALERT_EVAL_INTERVAL: '0.05s' }), { log: pino({ level: 'silent' }) });
  try {
    let sink!: AnomalySink;
    const src: AnomalySource = { name: 'docker (test)', feeds: ['container_restart', 'container_unhealthy'], start: (s) => (sink = s), stop: () => {} };
    hub.alerts.addSource(src);
    const loop = await hub.alerts.createRule({ name: 'restart loop', kind: 'anomaly', anomaly: 'container_restart_loop', threshold: 3, params: { windowSec: 1 }, forSec: 0, resolveForSec: 0 });
    const sick = await hub.alerts.createRule({ name: 'unhealthy', anomaly: 'container_unhealthy', forSec: 0, resolveForSec: 0 });
    // The hub's own source (the agents' container and unit reports) is there beside the test's.
    assert.deepEqual(hub.alerts.anomalyCatalog().find((a) => a.type === 'container_restart_loop')?.fedBy, ['agent reports (containers, units)', 'docker (test)']);
    assert.deepEqual(hub.alerts.anomalyCatalog().find((a) => a.type === 'systemd_unit_failed')?.fedBy, ['agent reports (containers, units)']);
    for (let n = 0; n < 3; n++) sink.event('', 'container_restart', 'web', Date.now(), 'exit code 1');
    sink.level('', 'container_unhealthy', 'db', 1);
    const firing = hub.alerts.active();
    assert.equal(firing.find((a) => a.ruleId === loop.id)?.state, 'firing');
    assert.equal(firing.find((a) => a.ruleId === loop.id)?.value, 3);
    assert.equal(firing.find((a) => a.ruleId === sick.id)?.subject, 'db');
    sink.level('', 'container_unhealthy', 'db', 0);
    // The restarts leave the 1 s window; the tick notices without any new event.
    const deadline = Date.now() + 5000;
    while (hub.alerts.active().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(hub.alerts.active().length, 0);
    await hub.alerts.settled();
    const hist = await hub.alerts.store.history({ limit: 10 });
    assert.deepEqual(hist.map((h) => [h.ruleName, h.state]).sort(), [['restart loop', 'resolved'], ['unhealthy', 'resolved']]);
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
