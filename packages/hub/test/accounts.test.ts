/**
 * Accounts and their defences on a real hub (HTTP where cookies, addresses and WebSockets matter,
 * inject elsewhere): lockout and unlock, no user enumeration, session revocation, CSRF, TOTP and
 * step-up, API token scopes, host scopes, password changes, the audit hook.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as OTPAuth from 'otpauth';
import { simFacts } from '@tether/testkit';
import { ENGINES } from './db.js';
import { ADMIN_PW, startApp, type TestApp } from './hub.js';

const code = (secret: string, at = Date.now()) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({ timestamp: at });

for (const engine of ENGINES) {
  describe(`accounts (${engine})`, () => {
    let app: TestApp;
    let admin: string;
    let adminId: string;
    before(async () => {
      app = await startApp(engine, { TETHER_LOGIN_IP_MAX_FAILURES: '1000' });
      adminId = (await app.hub.auth.findUser('admin'))!.id;
      admin = await app.session(adminId);
    });
    after(() => app.cleanup());

    test('lockout after repeated failures, the same answer for a name that is no user, and an admin unlock', async () => {
      const u = await app.user('lucy', 'viewer');
      const answers: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await app.login('lucy', 'wrong-password');
        assert.equal(r.status, 401);
        answers.push(await r.json());
      }
      const locked = await app.login('lucy', u.password);
      assert.equal(locked.status, 423, 'the right password does not open a locked account');
      const lockedBody = (await locked.json()) as { error: string; message: string };
      assert.equal(lockedBody.error, 'account_locked');
      assert.match(lockedBody.message, /locked after 5 failed attempts: try again in \d+ minute\(s\), or ask an admin to unlock it/);

      for (let i = 0; i < 5; i++) {
        const r = await app.login('nobody-here', 'wrong-password');
        assert.deepEqual(await r.json(), answers[i], 'an unknown name is answered like a known one');
      }
      const ghost = await app.login('nobody-here', 'anything');
      assert.equal(ghost.status, 423);
      assert.deepEqual(await ghost.json(), lockedBody, 'and locked like one');

      const list = await app.call(admin, 'GET', '/api/v1/users');
      assert.equal(list.json.users.find((x: { username: string }) => x.username === 'lucy').locked, true);
      assert.equal((await app.call(admin, 'POST', `/api/v1/users/${u.id}/unlock`)).status, 200);
      assert.equal((await app.login('lucy', u.password)).status, 200);

      const history = await app.call(admin, 'GET', '/api/v1/auth/logins?user=lucy');
      const outcomes = history.json.logins.map((l: { outcome: string }) => l.outcome);
      assert.deepEqual(outcomes.slice(0, 3), ['ok', 'locked', 'bad_password']);
      assert.equal(history.json.logins[0].userAgent, 'tether-test');
      assert.equal(history.json.logins[0].ip, '127.0.0.1');
    });

    test('failures from one address are limited per window', async () => {
      const small = await startApp(engine, { TETHER_LOGIN_IP_MAX_FAILURES: '3' });
      try {
        for (let i = 0; i < 3; i++) assert.equal((await small.login(`name${i}`, 'x')).status, 401);
        const r = await small.login('admin', ADMIN_PW);
        assert.equal(r.status, 429);
        assert.equal(((await r.json()) as { error: string }).error, 'too_many_attempts');
        assert.ok(Number(r.headers.get('retry-after')) > 0);
      } finally {
        await small.cleanup();
      }
    });

    test('revoking a session ends it at once, for API calls and for an open live socket', async () => {
      const u = await app.user('sam', 'viewer');
      const login = (await (await app.login('sam', u.password)).json()) as { token: string };
      const ws = new WebSocket(app.hub.url.replace(/^http/, 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${login.token}` } });
      await new Promise((r) => ws.once('message', r));
      const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
      const mine = await app.call(login.token, 'GET', '/api/v1/auth/sessions');
      assert.equal(mine.json.sessions.length, 1);
      assert.equal(mine.json.sessions[0].current, true);
      assert.equal(mine.json.sessions[0].userAgent, 'tether-test');

      const all = await app.call(admin, 'GET', '/api/v1/auth/sessions?all=true');
      const sid = all.json.sessions.find((s: { username: string }) => s.username === 'sam').id;
      assert.equal((await app.call(login.token, 'DELETE', `/api/v1/auth/sessions/${all.json.sessions.find((s: { username: string }) => s.username === 'admin').id}`)).status, 404, 'a viewer cannot end other users’ sessions');
      assert.equal((await app.call(admin, 'DELETE', `/api/v1/auth/sessions/${sid}`)).status, 200);
      assert.equal((await app.call(login.token, 'GET', '/api/v1/auth/me')).status, 401);
      assert.equal(await closed, 4401);

      // Disabling a user ends their sessions the same way.
      const again = (await (await app.login('sam', u.password)).json()) as { token: string };
      assert.equal((await app.call(admin, 'PATCH', `/api/v1/users/${u.id}`, { disabled: true })).status, 200);
      assert.equal((await app.call(again.token, 'GET', '/api/v1/auth/me')).status, 401);
      assert.equal((await app.login('sam', u.password)).status, 401);
    });

    test('cookie-authenticated writes need the CSRF token and an allowed origin; Bearer requests do not', async () => {
      const r = await app.login('admin', ADMIN_PW);
      const { csrfToken } = (await r.json()) as { csrfToken: string };
      const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const post = (headers: Record<string, string>) => fetch(app.hub.url + '/api/v1/enrollment-tokens', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });

      const none = await post({ cookie });
      assert.equal(none.status, 403);
      assert.equal(((await none.json()) as { error: string }).error, 'csrf_failed');
      assert.equal((await post({ cookie, 'x-csrf-token': 'guess' })).status, 403);
      assert.equal((await post({ cookie, 'x-csrf-token': csrfToken, origin: 'https://evil.example' })).status, 403);
      assert.equal((await post({ cookie, 'x-csrf-token': csrfToken, origin: app.hub.url })).status, 200);
      assert.equal((await post({ cookie, 'x-csrf-token': csrfToken })).status, 200);
      assert.equal((await fetch(app.hub.url + '/api/v1/auth/me', { headers: { cookie } })).status, 200, 'reads need no token');
      const me = (await (await fetch(app.hub.url + '/api/v1/auth/me', { headers: { cookie } })).json()) as { csrfToken: string };
      assert.equal(me.csrfToken, csrfToken, 'the console gets the token back after a reload');
      assert.equal((await post({ authorization: `Bearer ${admin}`, origin: 'https://evil.example' })).status, 200, 'a Bearer request is not a forgery');

      const foreignLogin = await fetch(app.hub.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PW }) });
      assert.equal(foreignLogin.status, 403);
      const ws = new WebSocket(app.hub.url.replace(/^http/, 'ws') + '/api/v1/live', { headers: { cookie, origin: 'https://evil.example' } });
      assert.equal(await new Promise<number>((res) => ws.once('close', (c) => res(c))), 4403);
    });

    test('TOTP: enrol with a QR code, login then needs a code, codes cannot be replayed, recovery codes work once', async () => {
      const u = await app.user('tina', 'operator');
      const s = (await (await app.login('tina', u.password)).json()) as { token: string };
      const e = await app.call(s.token, 'POST', '/api/v1/auth/totp');
      assert.equal(e.status, 200);
      assert.match(e.json.uri, /^otpauth:\/\/totp\/Tether:tina\?/);
      assert.match(e.json.qrSvg, /^<svg/);
      assert.ok(e.json.qrText.length > 100);
      assert.equal((await app.call(s.token, 'POST', '/api/v1/auth/totp/confirm', { code: code(e.json.secret, Date.now() - 5 * 60_000) })).status, 400, 'a wrong code does not turn it on');
      const c = await app.call(s.token, 'POST', '/api/v1/auth/totp/confirm', { code: code(e.json.secret) });
      assert.equal(c.status, 200);
      assert.equal(c.json.recoveryCodes.length, 10);

      const noCode = await app.login('tina', u.password);
      assert.equal(noCode.status, 401);
      assert.equal(((await noCode.json()) as { error: string }).error, 'totp_required');
      const wrongPwSameAnswer = (await (await app.login('tina', 'not-the-password')).json()) as { error: string };
      assert.equal(wrongPwSameAnswer.error, 'unauthorized', 'a wrong password says nothing about 2FA');
      const next = code(e.json.secret, Date.now() + 30_000); // the confirm used up the current step
      assert.equal((await app.login('tina', u.password, next)).status, 200);
      const replay = await app.login('tina', u.password, next);
      assert.equal(replay.status, 401);
      assert.equal(((await replay.json()) as { error: string }).error, 'bad_code');

      const rc = c.json.recoveryCodes[0] as string;
      assert.equal((await app.login('tina', u.password, rc)).status, 200);
      assert.equal((await app.login('tina', u.password, rc)).status, 401, 'a recovery code works once');
      const me = await app.call(s.token, 'GET', '/api/v1/auth/me');
      assert.equal(me.json.totpEnabled, true);
    });

    test('step-up: dangerous routes need a fresh factor; with 2FA on the password alone is not one', async () => {
      const u = await app.user('stella', 'admin');
      const stale = await app.session(u.id, Date.now() - 60 * 60_000);
      const denied = await app.call(stale, 'POST', '/api/v1/users', { username: 'newbie', password: 'a-long-password', role: 'viewer' });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error, 'step_up_required');
      assert.equal((await app.call(stale, 'POST', '/api/v1/auth/step-up', { password: 'wrong' })).status, 401);
      const ok = await app.call(stale, 'POST', '/api/v1/auth/step-up', { password: u.password });
      assert.equal(ok.status, 200);
      assert.ok(ok.json.stepUpUntil > Date.now() + 9 * 60_000);
      assert.equal((await app.call(stale, 'POST', '/api/v1/users', { username: 'newbie', password: 'a-long-password', role: 'viewer' })).status, 200);

      // With TOTP on, the step-up takes a one-time code.
      const e = await app.call(stale, 'POST', '/api/v1/auth/totp');
      const c = await app.call(stale, 'POST', '/api/v1/auth/totp/confirm', { code: code(e.json.secret) });
      const stale2 = await app.session(u.id, null);
      assert.equal((await app.call(stale2, 'DELETE', '/api/v1/users/nobody')).json.error, 'step_up_required');
      const pw = await app.call(stale2, 'POST', '/api/v1/auth/step-up', { password: u.password });
      assert.equal(pw.status, 400);
      assert.equal(pw.json.error, 'code_required');
      assert.equal((await app.call(stale2, 'POST', '/api/v1/auth/step-up', { code: '000000' })).status, 401);
      assert.equal((await app.call(stale2, 'POST', '/api/v1/auth/step-up', { code: c.json.recoveryCodes[1] })).status, 200);
      assert.equal((await app.call(stale2, 'DELETE', '/api/v1/users/nobody')).status, 404, 'past the step-up: the route itself answers');
      const history = await app.call(admin, 'GET', '/api/v1/auth/logins?user=stella');
      assert.ok(history.json.logins.some((l: { kind: string; outcome: string }) => l.kind === 'step_up' && l.outcome === 'failed'));
    });

    test('API tokens: shown once, stored hashed, scoped, limited to hosts, revocable at once, last use recorded', async () => {
      const op = await app.user('otto', 'operator');
      const s = await app.session(op.id);
      const staging = await app.hub.hosts.create({ facts: simFacts('stg-1'), labels: { env: 'staging' }, capabilities: ['metrics'], publicKey: 'k1', agentVersion: 't', enrolledBy: null, addr: null, now: Date.now() });
      const prod = await app.hub.hosts.create({ facts: simFacts('prod-1'), labels: { env: 'prod' }, capabilities: ['metrics'], publicKey: 'k2', agentVersion: 't', enrolledBy: null, addr: null, now: Date.now() });

      const created = await app.call(s, 'POST', '/api/v1/api-tokens', { name: 'ci', scope: 'read', hostSelector: 'env=staging', expiresInSec: 3600 });
      assert.equal(created.status, 200);
      const tok = created.json.token as string;
      assert.match(tok, /^tta_/);
      const listed = await app.call(s, 'GET', '/api/v1/api-tokens');
      assert.ok(!JSON.stringify(listed.json).includes(tok), 'never listed again');

      const hosts = await app.call(tok, 'GET', '/api/v1/hosts');
      assert.deepEqual(hosts.json.hosts.map((h: { id: string }) => h.id), [staging.id]);
      assert.equal((await app.call(tok, 'GET', `/api/v1/hosts/${prod.id}`)).status, 404);
      const write = await app.call(tok, 'PATCH', `/api/v1/hosts/${staging.id}`, { labels: { env: 'staging', x: '1' } });
      assert.equal(write.status, 403);
      assert.equal(write.json.error, 'insufficient_scope');
      assert.equal((await app.call(tok, 'POST', '/api/v1/api-tokens', { name: 'x', scope: 'read' })).json.error, 'session_required', 'tokens do not mint tokens');
      assert.equal((await app.call(tok, 'POST', '/api/v1/enrollment-tokens', {})).json.error, 'forbidden', 'never more than the owner’s role');

      const w = (await app.call(s, 'POST', '/api/v1/api-tokens', { name: 'w', scope: 'write' })).json.token as string;
      assert.equal((await app.call(w, 'PATCH', `/api/v1/hosts/${staging.id}`, { labels: { env: 'staging', x: '1' } })).status, 200);

      const info = (await app.call(s, 'GET', '/api/v1/api-tokens')).json.tokens.find((t: { name: string }) => t.name === 'ci');
      assert.ok(info.lastUsedAt > 0);
      assert.equal(info.scope, 'read');
      assert.equal((await app.call(s, 'DELETE', `/api/v1/api-tokens/${info.id}`)).status, 200);
      assert.equal((await app.call(tok, 'GET', '/api/v1/hosts')).status, 401, 'revoked at once');
    });

    test('a user limited to a label selector sees and changes only matching hosts', async () => {
      const u = await app.user('stan', 'operator', 'env=staging');
      const s = await app.session(u.id);
      const list = await app.call(s, 'GET', '/api/v1/hosts');
      assert.ok(list.json.hosts.length >= 1);
      assert.ok(list.json.hosts.every((h: { labels: { env: string } }) => h.labels.env === 'staging'));
      const all = await app.call(admin, 'GET', '/api/v1/hosts');
      const prod = all.json.hosts.find((h: { labels: { env: string } }) => h.labels.env === 'prod');
      const stg = list.json.hosts[0];
      assert.equal((await app.call(s, 'GET', `/api/v1/hosts/${prod.id}`)).status, 404);
      assert.equal((await app.call(s, 'PATCH', `/api/v1/hosts/${prod.id}`, { labels: { env: 'staging' } })).status, 404);
      assert.equal((await app.call(s, 'PATCH', `/api/v1/hosts/${stg.id}`, { labels: { env: 'prod' } })).status, 403, 'cannot move a host out of one’s scope');
      const overview = await app.call(s, 'GET', '/api/v1/metrics/overview');
      assert.ok(overview.json.hosts.every((h: { labels: { env: string } }) => h.labels.env === 'staging'));
      assert.equal((await app.call(s, 'GET', `/api/v1/hosts/${prod.id}/latest`)).status, 404);
      const me = await app.call(s, 'GET', '/api/v1/auth/me');
      assert.equal(me.json.hostSelector, 'env=staging');
      assert.equal((await app.call(admin, 'POST', '/api/v1/users', { username: 'boss2', password: 'a-long-password', role: 'admin', hostSelector: 'env=x' })).status, 400, 'admins are not scoped');
    });

    test('changing one’s own password needs the current one and ends the other sessions', async () => {
      const u = await app.user('pat', 'viewer');
      const a = (await (await app.login('pat', u.password)).json()) as { token: string };
      const b = (await (await app.login('pat', u.password)).json()) as { token: string };
      assert.equal((await app.call(a.token, 'POST', '/api/v1/auth/password', { currentPassword: 'nope', newPassword: 'a-new-long-password' })).status, 401);
      assert.equal((await app.call(a.token, 'POST', '/api/v1/auth/password', { currentPassword: u.password, newPassword: 'short' })).status, 400);
      assert.equal((await app.call(a.token, 'POST', '/api/v1/auth/password', { currentPassword: u.password, newPassword: 'a-new-long-password' })).status, 200);
      assert.equal((await app.call(a.token, 'GET', '/api/v1/auth/me')).status, 200, 'this session stays');
      assert.equal((await app.call(b.token, 'GET', '/api/v1/auth/me')).status, 401, 'the other ends');
      assert.equal((await app.login('pat', 'a-new-long-password')).status, 200);
      assert.equal((await app.call(admin, 'POST', `/api/v1/users/${u.id}/password`, { password: 'reset-by-admin-1' })).status, 200);
      assert.equal((await app.call(a.token, 'GET', '/api/v1/auth/me')).status, 401, 'an admin reset ends every session');
    });

    test('a password change keeps API tokens unless revokeApiTokens is set, which revokes them all at once', async () => {
      const u = await app.user('tobi', 'viewer');
      const s = (await (await app.login('tobi', u.password)).json()) as { token: string };
      const keep = await app.apiToken(u.id, 'read');
      const other = await app.session(u.id);
      const r1 = await app.call(s.token, 'POST', '/api/v1/auth/password', { currentPassword: u.password, newPassword: 'tobi-second-password' });
      assert.deepEqual(r1.json, { ok: true, revokedApiTokens: 0 });
      assert.equal((await app.call(keep, 'GET', '/api/v1/auth/me')).status, 200, 'tokens stay by default');
      assert.equal((await app.call(other, 'GET', '/api/v1/auth/me')).status, 401, 'other sessions end');
      const second = await app.apiToken(u.id, 'write');
      const theirs = await app.apiToken(adminId, 'read');
      const r2 = await app.call(s.token, 'POST', '/api/v1/auth/password', { currentPassword: 'tobi-second-password', newPassword: 'tobi-third-password', revokeApiTokens: true });
      assert.deepEqual(r2.json, { ok: true, revokedApiTokens: 2 });
      assert.equal((await app.call(keep, 'GET', '/api/v1/auth/me')).status, 401);
      assert.equal((await app.call(second, 'GET', '/api/v1/auth/me')).status, 401);
      assert.equal((await app.call(s.token, 'GET', '/api/v1/auth/me')).status, 200, 'the session that changed it stays');
      assert.equal((await app.call(theirs, 'GET', '/api/v1/auth/me')).status, 200, "another user's tokens are untouched");
      const listed = (await app.call(s.token, 'GET', '/api/v1/api-tokens')).json.tokens as { revokedAt: number | null }[];
      assert.ok(listed.length === 2 && listed.every((t) => t.revokedAt !== null));
    });

    test('every mutating call is in the audit log, secrets redacted, and the chain verifies', async () => {
      await app.hub.audit.flush();
      const r = await app.call(admin, 'GET', '/api/v1/audit?action=POST%20/api/v1/users&limit=1000');
      const created = r.json.entries.find((e: { params: { body?: { username?: string } } }) => e.params.body?.username === 'newbie');
      assert.ok(created, 'user creation recorded');
      assert.equal(created.actor, 'stella');
      assert.equal(created.authMethod, 'session-bearer');
      assert.equal(created.outcome, 'ok');
      assert.equal(created.params.body.password, '[redacted]');
      const denied = r.json.entries.find((e: { outcome: string }) => e.outcome === 'denied');
      assert.equal(denied.status, 403, 'denied attempts are recorded too');
      const logins = await app.call(admin, 'GET', '/api/v1/audit?action=POST%20/api/v1/auth/login&actor=lucy');
      assert.ok(logins.json.entries.some((e: { outcome: string; params: { body: { password: string } } }) => e.outcome === 'denied' && e.params.body.password === '[redacted]'));
      const byHost = await app.call(admin, 'GET', `/api/v1/audit?host=${encodeURIComponent((await app.call(admin, 'GET', '/api/v1/hosts?q=stg-1')).json.hosts[0].id)}`);
      assert.ok(byHost.json.entries.some((e: { action: string }) => e.action === 'PATCH /api/v1/hosts/:id'));
      const v = await app.call(admin, 'GET', '/api/v1/audit/verify');
      assert.equal(v.json.ok, true, JSON.stringify(v.json.problems));
      assert.ok(v.json.entries > 20);
      const exp = await app.hub.app.inject({ method: 'GET', url: '/api/v1/audit/export', headers: { authorization: `Bearer ${admin}` } });
      assert.match(exp.headers['content-type'] as string, /ndjson/);
      const lines = exp.body.trim().split('\n').map((l) => JSON.parse(l) as { seq: number });
      assert.equal(lines.length, v.json.entries);
      assert.deepEqual(lines.map((l) => l.seq), lines.map((_, i) => i + 1));
    });

    test('security headers on API answers', async () => {
      const r = await fetch(app.hub.url + '/api/v1/health');
      assert.equal(r.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    });
  });
}
