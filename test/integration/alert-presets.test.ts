/**
 * The preset rules a hub ships: a fresh hub has the anomaly presets (container restart loop, OOM
 * kill, unhealthy container, failed unit, clock skew, the hub's certificate) enabled beside the
 * metric ones; reset-presets puts them all back; an older hub is offered the ones shipped since at
 * its next start, and one an operator deleted stays deleted. The hub certificate preset fires on a
 * hub whose TLS certificate expires soon. (A restart-looping container firing its preset on a fresh
 * hub: test/fleet/presets.test.ts.) SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { TestHub, tempDir, testDatabases, waitFor } from '@tether/testkit';

const ANOMALY_PRESETS: Record<string, { anomaly: string; threshold: number; params: Record<string, unknown> }> = {
  'preset-container-restart-loop': { anomaly: 'container_restart_loop', threshold: 5, params: { windowSec: 600 } },
  'preset-container-oom': { anomaly: 'container_oom', threshold: 1, params: { windowSec: 600 } },
  'preset-container-unhealthy': { anomaly: 'container_unhealthy', threshold: 1, params: {} },
  'preset-systemd-unit-failed': { anomaly: 'systemd_unit_failed', threshold: 1, params: {} },
  'preset-clock-skew': { anomaly: 'clock_skew', threshold: 30, params: {} },
  'preset-hub-certificate': { anomaly: 'cert_expiry', threshold: 14, params: { endpoint: 'hub' } },
};
const NEW_KEYS = ['container_restart_loop', 'container_oom', 'container_unhealthy', 'systemd_unit_failed', 'clock_skew', 'hub_certificate'];

/** Runs SQL on a stopped hub's database, as an older hub would have left it. */
async function onDatabase(hub: TestHub, statements: string[]): Promise<void> {
  if (hub.dbUrl.startsWith('sqlite:')) {
    const db = new Database(hub.dbUrl.slice('sqlite:'.length));
    try {
      for (const s of statements) db.prepare(s).run();
    } finally {
      db.close();
    }
    return;
  }
  const u = new URL(hub.dbUrl);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    await c.query(`SET search_path TO "${schema}"`);
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

for (const db of testDatabases()) {
  describe(`preset rules (${db})`, () => {
    let hub: TestHub;
    before(async () => {
      hub = await TestHub.start({ db });
    });
    after(async () => {
      await hub?.cleanup();
    });
    const rules = async () => (await hub.api('GET', '/api/v1/alerts/rules')).rules as any[];

    test('a fresh hub has the anomaly presets enabled beside the metric ones, and reset-presets puts every one back', async () => {
      const list = await rules();
      for (const [id, want] of Object.entries(ANOMALY_PRESETS)) {
        const r = list.find((x) => x.id === id);
        assert.ok(r, `${id} is there: ${list.map((x) => x.id).join(' ')}`);
        assert.equal(r.kind, 'anomaly');
        assert.equal(r.anomaly, want.anomaly);
        assert.equal(r.threshold, want.threshold);
        assert.deepEqual(r.params, want.params);
        assert.equal(r.enabled, true, `${id} is enabled`);
        assert.deepEqual(r.scope, {}, `${id} watches every host`);
      }
      const catalog = await hub.api('GET', '/api/v1/alerts/catalog');
      assert.deepEqual([...catalog.presets].sort(), list.filter((r) => r.preset).map((r) => r.preset).sort(), 'the catalog names every preset');
      assert.equal(list.filter((r) => r.preset).length, 14);

      await hub.api('PATCH', '/api/v1/alerts/rules/preset-container-restart-loop', { enabled: false, threshold: 50 });
      await hub.api('DELETE', '/api/v1/alerts/rules/preset-systemd-unit-failed');
      const reset = (await hub.api('POST', '/api/v1/alerts/rules/reset-presets')).rules as any[];
      assert.equal(reset.length, 14);
      const after = await rules();
      const loop = after.find((r) => r.id === 'preset-container-restart-loop');
      assert.equal(loop.enabled, true);
      assert.equal(loop.threshold, 5);
      assert.ok(after.find((r) => r.id === 'preset-systemd-unit-failed'), 'a deleted preset comes back');
    });

    test('a preset an operator deleted stays deleted across restarts; an older hub is offered the presets shipped since', async () => {
      await hub.api('DELETE', '/api/v1/alerts/rules/preset-clock-skew');
      await hub.restart();
      assert.equal((await rules()).find((r) => r.id === 'preset-clock-skew'), undefined, 'not offered again');

      // The database as a hub from before these presets left it.
      await hub.kill('SIGTERM');
      const keys = NEW_KEYS.map((k) => `'${k}'`).join(', ');
      await onDatabase(hub, [`DELETE FROM alert_rules WHERE preset IN (${keys})`, `DELETE FROM alert_presets_offered WHERE key IN (${keys})`]);
      await hub.restart();
      const list = await rules();
      for (const id of Object.keys(ANOMALY_PRESETS)) assert.ok(list.find((r) => r.id === id && r.enabled), `${id} offered at start`);
      assert.equal(list.filter((r) => r.preset).length, 14);
    });
  });

  describe(`the hub certificate preset (${db})`, () => {
    let hub: TestHub;
    let dir: string;
    before(async () => {
      dir = tempDir('tether-cert-');
      // A certificate that expires in 3 days: within the preset's 14.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '3', '-subj', '/CN=hub-soon'], { stdio: 'ignore' });
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // this process's API client only
      hub = await TestHub.start({ db, extraArgs: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')], env: { TETHER_ALERT_EVAL_INTERVAL: '0.2s' } });
    });
    after(async () => {
      await hub?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    test("fires on a hub whose own certificate expires within 14 days, with no rule made by hand", async () => {
      const a = await waitFor(async () => (await hub.api('GET', '/api/v1/alerts?rule=preset-hub-certificate')).alerts.find((x: any) => x.state === 'firing'), 'hub certificate firing', 15_000, 200);
      assert.equal(a.subject, 'hub');
      assert.ok(a.value > 2 && a.value <= 3, `days left: ${a.value}`);
      assert.match(a.detail, /the hub's certificate CN=hub-soon valid until \d{4}-/);
    });
  });
}
