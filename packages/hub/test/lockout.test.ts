/**
 * Login lockout under concurrency, on a real hub over HTTP and on both databases: guesses that
 * arrive together are counted before any password is checked, so no more than the limit are ever
 * checked against an account's password, and an expired lock gives real and unknown names the
 * same fresh count.
 *
 * What was checked is read from the login history: `bad_password` (and a step-up's `failed`) is
 * written only for a guess whose password was verified; a guess refused before that is `locked`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@tether/testkit';
import { ENGINES } from './db.js';
import { startApp, type TestApp } from './hub.js';
import { newTotpSecret } from '../src/modules/auth/totp.js';

const tally = (xs: (string | number)[]) => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};

async function loginHistory(app: TestApp, admin: string, username: string): Promise<string[]> {
  const r = await app.call(admin, 'GET', '/api/v1/auth/logins?all=true&limit=1000');
  return r.json.logins.filter((l: { username: string }) => l.username === username).map((l: { outcome: string }) => l.outcome);
}

for (const engine of ENGINES) {
  describe(`login lockout under concurrency (${engine})`, () => {
    let app: TestApp;
    let admin: string;
    before(async () => {
      app = await startApp(engine, { TETHER_LOGIN_IP_MAX_FAILURES: '1000' });
      admin = await app.session((await app.hub.auth.findUser('admin'))!.id);
    });
    after(() => app.cleanup());

    test('40 parallel wrong passwords for one account: 5 are checked against its password, the other 35 are answered locked', async () => {
      const u = await app.user('racer', 'viewer');
      const answers = await Promise.all(Array.from({ length: 40 }, () => app.login('racer', 'wrong-password-x')));
      assert.deepEqual(tally(answers.map((r) => r.status)), { 401: 5, 423: 35 });
      await Promise.all(answers.map((r) => r.body?.cancel()));
      assert.deepEqual(tally(await loginHistory(app, admin, 'racer')), { bad_password: 5, locked: 35 });
      assert.equal((await app.login('racer', u.password)).status, 423, 'the right password does not open it either');
      const view = (await app.call(admin, 'GET', '/api/v1/users')).json.users.find((x: { username: string }) => x.username === 'racer');
      assert.equal(view.locked, true);
      assert.equal(view.failedLogins, 5);
    });

    test('40 parallel guesses for a name that is no account are limited exactly the same way', async () => {
      const answers = await Promise.all(Array.from({ length: 40 }, () => app.login('no-such-racer', 'wrong-password-x')));
      assert.deepEqual(tally(answers.map((r) => r.status)), { 401: 5, 423: 35 });
      await Promise.all(answers.map((r) => r.body?.cancel()));
      assert.deepEqual(tally(await loginHistory(app, admin, 'no-such-racer')), { bad_password: 5, locked: 35 });
    });

    test('20 parallel wrong step-ups count against the same lock: 5 checked, then locked', async () => {
      const u = await app.user('stepper', 'viewer');
      const s = await app.session(u.id);
      const answers = await Promise.all(Array.from({ length: 20 }, () => app.call(s, 'POST', '/api/v1/auth/step-up', { password: 'wrong-password-x' })));
      assert.deepEqual(tally(answers.map((r) => r.status)), { 401: 5, 423: 15 });
      assert.deepEqual(tally(await loginHistory(app, admin, 'stepper')), { failed: 5 });
      assert.equal((await app.login('stepper', u.password)).status, 423);
    });

    test('a right password clears the failures counted before it', async () => {
      const u = await app.user('mixed', 'viewer');
      const wrong = await Promise.all(Array.from({ length: 3 }, () => app.login('mixed', 'wrong-password-x')));
      assert.deepEqual(tally(wrong.map((r) => r.status)), { 401: 3 });
      assert.equal((await app.login('mixed', u.password)).status, 200);
      const view = (await app.call(admin, 'GET', '/api/v1/users')).json.users.find((x: { username: string }) => x.username === 'mixed');
      assert.equal(view.failedLogins, 0);
      assert.equal(view.locked, false);
    });

    test('a right password waiting for its one-time code is not counted; wrong codes are, in parallel too', async () => {
      const u = await app.user('twofa', 'viewer');
      await app.hub.auth.enableTotp(u.id, newTotpSecret(), 0, [], Date.now());
      for (let i = 0; i < 8; i++) {
        const r = await app.login('twofa', u.password);
        assert.equal(r.status, 401);
        assert.equal(((await r.json()) as { error: string }).error, 'totp_required');
      }
      const view = (await app.call(admin, 'GET', '/api/v1/users')).json.users.find((x: { username: string }) => x.username === 'twofa');
      assert.equal(view.failedLogins, 0);
      const bad = await Promise.all(Array.from({ length: 10 }, () => app.login('twofa', u.password, '000000')));
      assert.deepEqual(tally(bad.map((r) => r.status)), { 401: 5, 423: 5 });
      await Promise.all(bad.map((r) => r.body?.cancel()));
    });

    test('40 parallel guesses from one address: no more than the address limit are checked', async () => {
      const small = await startApp(engine, { TETHER_LOGIN_IP_MAX_FAILURES: '5' });
      try {
        const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => small.login(`spray-${i}`, 'wrong-password-x')));
        assert.deepEqual(tally(answers.map((r) => r.status)), { 401: 5, 429: 35 });
        await Promise.all(answers.map((r) => r.body?.cancel()));
      } finally {
        await small.cleanup();
      }
    });
  });

  describe(`after a lock expires (${engine})`, () => {
    const LOCK_MS = 2000;
    let app: TestApp;
    before(async () => {
      app = await startApp(engine, { TETHER_LOGIN_IP_MAX_FAILURES: '1000', TETHER_LOCKOUT_DURATION: `${LOCK_MS / 1000}s` });
    });
    after(() => app.cleanup());

    test('a real account and an unknown name each get the full count of tries again, with the same answers', async () => {
      await app.user('expiring', 'viewer');
      const run = async (name: string, n: number) => {
        const out: { status: number; body: unknown }[] = [];
        for (let i = 0; i < n; i++) {
          const r = await app.login(name, 'wrong-password-x');
          out.push({ status: r.status, body: await r.json() });
        }
        return out;
      };
      const firstReal = await run('expiring', 6);
      const firstGhost = await run('never-was', 6);
      const lockedAt = Date.now();
      assert.deepEqual(firstReal.map((a) => a.status), [401, 401, 401, 401, 401, 423]);
      assert.deepEqual(firstGhost.map((a) => a.status), [401, 401, 401, 401, 401, 423]);

      await waitFor(() => Date.now() > lockedAt + LOCK_MS + 100, 'both locks to expire', LOCK_MS + 5000);
      const againReal = await run('expiring', 6);
      const againGhost = await run('never-was', 6);
      assert.deepEqual(againReal.map((a) => a.status), [401, 401, 401, 401, 401, 423], 'the real account gets 5 tries again, not 1');
      assert.deepEqual(againGhost.map((a) => a.status), [401, 401, 401, 401, 401, 423]);
      assert.deepEqual(againReal.map((a) => a.body), againGhost.map((a) => a.body), 'nothing tells them apart');
    });
  });
}
