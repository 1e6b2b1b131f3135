/**
 * What the hub keeps on disk: file modes whatever the umask and however the data directory came to
 * exist, a refusal to start in a directory others can write, and TOTP and alert-channel secrets
 * sealed in the database with the key file beside it (both databases).
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import * as OTPAuth from 'otpauth';
import { createHub, type Hub } from '../src/server.js';
import { loadHubConfig } from '../src/config.js';
import { newTotpSecret } from '../src/modules/auth/totp.js';
import { pgSchema } from '@tether/testkit';
import { ENGINES } from './db.js';
import { ADMIN_PW } from './hub.js';

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
const code = (secret: string) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate();

function start(data: string, db: string, env: Record<string, string> = {}): Promise<Hub> {
  return createHub(loadHubConfig({ listen: '127.0.0.1:0', data, db }, { TETHER_ADMIN_PASSWORD: ADMIN_PW, ...env }), { log: pino({ level: 'silent' }) });
}

function login(hub: Hub, username: string, password: string, otp?: string): Promise<Response> {
  return fetch(hub.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password, ...(otp ? { code: otp } : {}) }) });
}

describe('files at rest (sqlite)', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('in a data directory made beforehand (0755), under umask 000, the database, its WAL and shared memory, the key file and the TLS key are 0600; older files are set so', async () => {
    const before = process.umask(0);
    try {
      const data = mkdtempSync(join(tmpdir(), 'tether-rest-'));
      dirs.push(data);
      chmodSync(data, 0o755);
      // what an older hub left behind, readable by everyone
      mkdirSync(join(data, 'recordings'), { mode: 0o755 });
      writeFileSync(join(data, 'recordings', 'ts_old.cast'), '{}\n', { mode: 0o644 });
      mkdirSync(join(data, 'bundles'), { mode: 0o755 });
      writeFileSync(join(data, 'bundles', 'old.tar'), 'x', { mode: 0o644 });
      const db = `sqlite:${join(data, 'tether.db')}`;
      let hub = await start(data, db, { TETHER_TLS_SELF_SIGNED: 'true' });
      assert.ok(existsSync(join(data, 'tether.db-wal')) && existsSync(join(data, 'tether.db-shm')), readdirSync(data).join(' '));
      for (const f of ['tether.db', 'tether.db-wal', 'tether.db-shm', 'secret.key', 'tls/hub-key.pem', 'recordings/ts_old.cast', 'bundles/old.tar']) assert.equal(mode(join(data, f)), '0600', f);
      assert.equal(mode(join(data, 'recordings')), '0700');
      assert.equal(mode(join(data, 'bundles')), '0700');
      assert.equal(mode(data), '0755', "the operator's directory is left as it was: it is not writable by others");
      await hub.stop();

      for (const f of ['tether.db', 'secret.key']) chmodSync(join(data, f), 0o644);
      hub = await start(data, db, { TETHER_TLS_SELF_SIGNED: 'true' });
      for (const f of ['tether.db', 'tether.db-wal', 'tether.db-shm', 'secret.key']) assert.equal(mode(join(data, f)), '0600', `${f} after a restart`);
      await hub.stop();
    } finally {
      process.umask(before);
    }
  });

  test('a group- or world-writable data directory stops the start, saying what to do, before any file is made', async () => {
    for (const [m, who] of [[0o775, 'its group'], [0o757, 'everyone'], [0o777, 'its group and everyone']] as const) {
      const data = mkdtempSync(join(tmpdir(), 'tether-rest-'));
      dirs.push(data);
      chmodSync(data, m);
      await assert.rejects(start(data, `sqlite:${join(data, 'tether.db')}`), (err: Error) => {
        assert.match(err.message, new RegExp(`the data directory ${data} is writable by ${who} \\(mode 0${m.toString(8)}\\).*chmod go-w ${data}`));
        return true;
      });
      assert.deepEqual(readdirSync(data), []);
    }
  });
});

for (const engine of ENGINES) {
  describe(`secrets at rest (${engine})`, () => {
    const data = mkdtempSync(join(tmpdir(), 'tether-rest-'));
    const pgs = engine === 'postgres' ? pgSchema() : undefined;
    const db = pgs?.url ?? `sqlite:${join(data, 'tether.db')}`;
    after(async () => {
      rmSync(data, { recursive: true, force: true });
      await pgs?.drop();
    });

    test('TOTP and channel secrets are stored sealed and bound to their row; plaintext from before is read, then sealed at the next start; another key file stops the start', async () => {
      let hub = await start(data, db);
      const raw = hub.db.db;
      const now = Date.now();
      const mk = async (name: string) => {
        const u = await hub.auth.createUser(name, `${name}-password-1`, 'viewer', now);
        const secret = newTotpSecret();
        await hub.auth.enableTotp(u.id, secret, 0, [], now);
        return { ...u, secret, password: `${name}-password-1` };
      };
      const ann = await mk('ann');
      const ben = await mk('ben');
      const rowOf = async (id: string) => (await raw.selectFrom('users').select(['totp_secret']).where('id', '=', id).executeTakeFirstOrThrow()).totp_secret as string;
      const sealedAnn = await rowOf(ann.id);
      assert.match(sealedAnn, /^enc:v1:[0-9a-f]{8}:/);
      assert.ok(!sealedAnn.includes(ann.secret));
      assert.equal((await login(hub, 'ann', ann.password, code(ann.secret))).status, 200);

      await hub.alerts.store.putChannel({ id: 'ch_rest', name: 'hook', type: 'webhook', enabled: true, config: { url: 'http://127.0.0.1:9/hook' }, secret: { hmacKey: 'hmac-secret-at-rest' }, createdAt: now, updatedAt: now });
      const channelRow = async () => (await raw.selectFrom('alert_channels').select(['secret']).where('id', '=', 'ch_rest').executeTakeFirstOrThrow()).secret as string;
      assert.match(await channelRow(), /^enc:v1:/);
      assert.ok(!(await channelRow()).includes('hmac-secret-at-rest'));
      assert.deepEqual((await hub.alerts.store.channels()).find((c) => c.id === 'ch_rest')!.secret, { hmacKey: 'hmac-secret-at-rest' });

      // A sealed value moved to another row does not open there.
      const benSealed = await rowOf(ben.id);
      await raw.updateTable('users').set({ totp_secret: sealedAnn }).where('id', '=', ben.id).execute();
      await assert.rejects(hub.auth.loginRow({ id: ben.id }), /altered or moved from another row/);
      await raw.updateTable('users').set({ totp_secret: benSealed }).where('id', '=', ben.id).execute();

      // Plaintext as an older hub stored it: read as it is, sealed at the next start.
      await raw.updateTable('users').set({ totp_secret: ben.secret }).where('id', '=', ben.id).execute();
      await raw.updateTable('alert_channels').set({ secret: JSON.stringify({ hmacKey: 'older-plaintext' }) }).where('id', '=', 'ch_rest').execute();
      assert.equal((await login(hub, 'ben', ben.password, code(ben.secret))).status, 200);
      assert.deepEqual((await hub.alerts.store.channels()).find((c) => c.id === 'ch_rest')!.secret, { hmacKey: 'older-plaintext' });
      await hub.stop();

      hub = await start(data, db);
      assert.match(await (async () => (await hub.db.db.selectFrom('users').select(['totp_secret']).where('id', '=', ben.id).executeTakeFirstOrThrow()).totp_secret as string)(), /^enc:v1:/);
      assert.match((await hub.db.db.selectFrom('alert_channels').select(['secret']).where('id', '=', 'ch_rest').executeTakeFirstOrThrow()).secret as string, /^enc:v1:/);
      assert.deepEqual((await hub.alerts.store.channels()).find((c) => c.id === 'ch_rest')!.secret, { hmacKey: 'older-plaintext' });
      // a code of the step after the one used above: each step is accepted once
      const next = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(ann.secret) }).generate({ timestamp: Date.now() + 30_000 });
      assert.equal((await login(hub, 'ann', ann.password, next)).status, 200, 'sealed before the restart, still opens');
      await hub.stop();

      writeFileSync(join(data, 'secret.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
      await assert.rejects(start(data, db), /the database holds secrets sealed with key [0-9a-f]{8}, but .*secret\.key is key [0-9a-f]{8}: every hub sharing a database needs the same key file/);
    });
  });
}
