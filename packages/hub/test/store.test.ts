/**
 * The storage layer on both engines: the same migrations and queries, the same answers.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseSelector } from '@tether/protocol';
import { simFacts } from '@tether/testkit';
import { parseDbUrl, type DbHandle } from '../src/db/database.js';
import { ENGINES, testDb } from './db.js';
import { migrate } from '../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../src/server.js';
import { HostStore } from '../src/modules/hosts/store.js';
import { EnrollStore } from '../src/modules/enroll/store.js';
import { AuthStore } from '../src/modules/auth/store.js';
import { SecretBox } from '../src/secret-box.js';
import { randomBytes } from 'node:crypto';


const facts = simFacts;

test('database URLs are parsed without leaking passwords, and bad ones are refused clearly', () => {
  assert.equal(parseDbUrl('sqlite:data/x.db', '/srv').path, '/srv/data/x.db');
  const p = parseDbUrl('postgres://u:secret@db:5432/tether?schema=prod', '/');
  assert.equal(p.kind, 'postgres');
  assert.equal(p.pg?.schema, 'prod');
  assert.ok(!p.describe.includes('secret'));
  assert.throws(() => parseDbUrl('mysql://x', '/'), /unsupported database URL/);
  assert.throws(() => parseDbUrl('postgres://h/db?schema=Robert%27);DROP', '/'), /schema must match/);
});

for (const engine of ENGINES) {
  describe(`store on ${engine}`, () => {
    let h: DbHandle;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ h, cleanup } = await testDb(engine));
    });
    after(() => cleanup());

    test('migrations are idempotent', async () => {
      assert.deepEqual(await migrate(h.db, ALL_MIGRATIONS, h.schema), []);
    });

    test('hosts: create, get, search by hostname, IP and MAC, select by labels', async () => {
      const hosts = new HostStore(h.db);
      const now = Date.now();
      const a = await hosts.create({ facts: facts('web-1', '10.1.0.1', 'aa:bb:cc:00:00:01'), labels: { env: 'prod', role: 'web' }, capabilities: ['metrics'], publicKey: 'k'.repeat(43), agentVersion: '1', enrolledBy: null, addr: '10.1.0.1', now });
      await hosts.create({ facts: facts('db-1', '10.1.0.2', 'aa:bb:cc:00:00:02'), labels: { env: 'prod', role: 'db' }, capabilities: ['metrics'], publicKey: 'k'.repeat(43), agentVersion: '1', enrolledBy: null, addr: null, now });
      await hosts.create({ facts: facts('web_2', '10.2.0.1', 'aa:bb:cc:00:00:03'), labels: { env: 'staging' }, capabilities: [], publicKey: 'k'.repeat(43), agentVersion: '1', enrolledBy: null, addr: null, now });
      const got = await hosts.get(a.id);
      assert.deepEqual(got?.labels, { env: 'prod', role: 'web' });
      assert.equal(got?.createdAt, now, 'bigint times come back as numbers');
      assert.equal(typeof got?.createdAt, 'number');
      const names = async (q: Parameters<HostStore['list']>[0]) => (await hosts.list(q)).map((x) => x.hostname);
      assert.deepEqual(await names({ q: 'web' }), ['web-1', 'web_2']);
      assert.deepEqual(await names({ q: '10.1.0.2' }), ['db-1']);
      assert.deepEqual(await names({ q: 'AA:BB:CC:00:00:03' }), ['web_2']);
      assert.deepEqual(await names({ q: 'web_' }), ['web_2'], 'LIKE wildcards in the search text are literal');
      assert.deepEqual(await names({ q: '%' }), []);
      assert.deepEqual(await names({ selector: parseSelector('env=prod,role!=db') }), ['web-1']);
      assert.deepEqual(await names({}), ['db-1', 'web-1', 'web_2']);
    });

    test('hosts: facts update, labels, revoke and delete', async () => {
      const hosts = new HostStore(h.db);
      const x = await hosts.create({ facts: facts('old', '10.9.0.1', '00:00:00:00:09:01'), labels: {}, capabilities: [], publicKey: 'k'.repeat(43), agentVersion: '1', enrolledBy: null, addr: null, now: 1 });
      await hosts.recordConnect(x.id, { facts: facts('new', '10.9.0.2', '00:00:00:00:09:01'), capabilities: ['metrics', 'exec'], agentVersion: '2', addr: '127.0.0.1', now: 5 });
      const y = (await hosts.get(x.id))!;
      assert.equal(y.hostname, 'new');
      assert.deepEqual(y.capabilities, ['metrics', 'exec']);
      assert.equal(y.lastSeen, 5);
      assert.deepEqual((await hosts.list({ q: '10.9.0.2' })).map((z) => z.id), [x.id]);
      assert.equal(await hosts.setLabels(x.id, { a: 'b' }), true);
      assert.equal(await hosts.revoke(x.id, 9), true);
      assert.equal(await hosts.revoke(x.id, 10), false, 'revoking twice changes nothing');
      assert.ok(!(await hosts.list({})).some((z) => z.id === x.id), 'revoked hosts leave the default list');
      assert.ok((await hosts.list({ includeRevoked: true })).some((z) => z.id === x.id));
      assert.equal(await hosts.delete(x.id), true);
      assert.equal(await hosts.get(x.id), undefined);
    });

    test('enrollment tokens: single use holds under a race, expiry and revocation refuse', async () => {
      const enroll = new EnrollStore(h.db);
      const now = Date.now();
      const once = await enroll.create({ labels: { env: 'prod' }, expiresInSec: 60, singleUse: true, createdBy: 't', now });
      const results = await Promise.all(Array.from({ length: 8 }, () => enroll.consume(once.token, now)));
      assert.equal(results.filter((r) => r.ok).length, 1, 'exactly one of eight racing enrollments wins');
      assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.code === 'token_used'));
      const ok = results.find((r) => r.ok);
      assert.deepEqual(ok?.ok && ok.token.labels, { env: 'prod' });

      const multi = await enroll.create({ labels: {}, expiresInSec: 60, singleUse: false, createdBy: 't', now });
      for (let i = 0; i < 3; i++) assert.equal((await enroll.consume(multi.token, now)).ok, true);
      assert.equal((await enroll.consume(multi.token, now + 61_000)) .ok === false, true);
      const exp = await enroll.consume(multi.token, now + 61_000);
      assert.ok(!exp.ok && exp.code === 'token_expired');
      assert.equal(await enroll.revoke(multi.record.id, now), true);
      const rev = await enroll.consume(multi.token, now);
      assert.ok(!rev.ok && rev.code === 'bad_token');
      const unknown = await enroll.consume('tte_nope', now);
      assert.ok(!unknown.ok && unknown.code === 'bad_token');
      const listed = await enroll.list();
      assert.ok(listed.every((t) => !('token_hash' in t)), 'the list never carries token material');
    });

    test('auth: password check, sessions that expire and can be deleted', async () => {
      const auth = new AuthStore(h.db, new SecretBox(randomBytes(32)));
      const now = Date.now();
      await auth.createUser('alice', 'correct horse', 'admin', now);
      assert.equal(await auth.checkPassword('alice', 'wrong'), undefined);
      assert.equal(await auth.checkPassword('nobody', 'correct horse'), undefined);
      const u = await auth.checkPassword('alice', 'correct horse');
      assert.equal(u?.role, 'admin');
      const s = await auth.createSession(u!.id, { ip: '127.0.0.1', userAgent: 'test' }, now);
      assert.equal((await auth.authenticate(s.token, now + 1000))?.user.username, 'alice');
      assert.equal(await auth.authenticate(s.token, s.expiresAt + 1), undefined, 'expired session');
      assert.equal(await auth.authenticate('tts_forged', now), undefined);
      await auth.deleteSession(s.token);
      assert.equal(await auth.authenticate(s.token, now + 1000), undefined, 'deleted session');
    });
  });
}
