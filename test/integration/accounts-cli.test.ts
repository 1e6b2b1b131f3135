/**
 * The account commands of `tether` against a real hub: users, API tokens used by automation, the
 * automatic step-up when the hub asks for one, session revocation, and `tether audit`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { createHub, loadHubConfig, type Hub } from '@tether/hub';
import { cli, tempDir } from '@tether/testkit';

const PW = 'cli-admin-password-1';
let hub: Hub;
let data: string;
let dir: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  data = mkdtempSync(join(tmpdir(), 'tether-acli-'));
  hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data }, { TETHER_ADMIN_PASSWORD: PW }), { log: pino({ level: 'silent' }) });
  dir = tempDir('tether-cli-');
  env = { TETHER_CLI_CONFIG: join(dir, 'cli.json'), TETHER_PASSWORD: PW };
  const login = await cli(['login', '--hub', hub.url], env);
  assert.equal(login.code, 0, login.stderr);
});
after(async () => {
  await hub.stop();
  rmSync(data, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

test('user add/ls/set/unlock/rm, with the password from the environment', async () => {
  const add = await cli(['user', 'add', 'vera', '--role', 'operator', '--hosts', 'env=staging'], { ...env, TETHER_NEW_PASSWORD: 'vera-password-1' });
  assert.equal(add.code, 0, add.stderr);
  const ls = await cli(['user', 'ls'], env);
  assert.match(ls.stdout, /vera\s+operator\s+env=staging\s+off\s+active/);
  { const r = await cli(['user', 'set', 'vera', '--role', 'viewer', '--all-hosts'], env); assert.equal(r.code, 0, r.stderr); }
  assert.match((await cli(['user', 'ls'], env)).stdout, /vera\s+viewer\s+all/);
  { const r = await cli(['user', 'unlock', 'vera'], env); assert.equal(r.code, 0, r.stderr); }
  { const r = await cli(['user', 'rm', 'vera'], env); assert.equal(r.code, 0, r.stderr); }
  assert.doesNotMatch((await cli(['user', 'ls'], env)).stdout, /vera/);
  const bad = await cli(['user', 'add', 'x', '--role', 'viewer'], { ...env, TETHER_NEW_PASSWORD: 'short' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /at least 10|fewer than 10|minLength|must NOT have fewer/i);
});

test('a command that needs a step-up confirms with the password and goes on', async () => {
  const admin = (await hub.auth.findUser('admin'))!;
  const stale = await hub.auth.createSession(admin.id, { ip: '127.0.0.1', userAgent: 'cli-test', stepUpAt: null }, Date.now());
  const senv = { TETHER_HUB: hub.url, TETHER_SESSION: stale.token, TETHER_NEW_PASSWORD: 'walt-password-1' };
  const refused = await cli(['user', 'add', 'walt', '--role', 'viewer'], { ...senv, TETHER_PASSWORD: '' });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /needs a step-up: set TETHER_PASSWORD/);
  const ok = await cli(['user', 'add', 'walt', '--role', 'viewer'], { ...senv, TETHER_PASSWORD: PW });
  assert.equal(ok.code, 0, ok.stderr);
  const who = await cli(['whoami'], { ...senv, TETHER_PASSWORD: '' });
  assert.match(who.stdout, /admin \(admin\) via session; 2FA off; step-up until/);
});

test('an API token works for automation within its scope, and is revocable', async () => {
  const c = await cli(['apitoken', 'create', 'ci', '--scope', 'read', '--expires', '1d', '--json'], env);
  assert.equal(c.code, 0, c.stderr);
  const { token, tokenInfo } = JSON.parse(c.stdout) as { token: string; tokenInfo: { id: string } };
  const tenv = { TETHER_HUB: hub.url, TETHER_API_TOKEN: token };
  const hosts = await cli(['hosts', '--json'], tenv);
  assert.equal(hosts.code, 0, hosts.stderr);
  const write = await cli(['token', 'create'], tenv);
  assert.equal(write.code, 1);
  assert.match(write.stderr, /scope write \(this one has read\)/);
  assert.match((await cli(['apitoken', 'ls'], env)).stdout, /ci\s+read\s+all/);
  { const r = await cli(['apitoken', 'revoke', tokenInfo.id], env); assert.equal(r.code, 0, r.stderr); }
  assert.match((await cli(['hosts'], tenv)).stderr, /run `tether login` again/);
});

test('session ls and revoke; logins shows the history', async () => {
  const other = await cli(['login', '--hub', hub.url], { ...env, TETHER_CLI_CONFIG: join(dir, 'other.json') });
  assert.equal(other.code, 0, other.stderr);
  const ls = await cli(['session', 'ls', '--json'], env);
  const sessions = (JSON.parse(ls.stdout) as { sessions: { id: string; current: boolean }[] }).sessions;
  assert.ok(sessions.length >= 2);
  const victim = sessions.find((s) => !s.current)!;
  const revoke = await cli(['session', 'revoke', victim.id], env);
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.ok(!(JSON.parse((await cli(['session', 'ls', '--json'], env)).stdout) as { sessions: { id: string }[] }).sessions.some((s) => s.id === victim.id));
  assert.match((await cli(['logins'], env)).stdout, /admin\s+login\s+ok\s+127\.0\.0\.1/);
});

test('tether audit ls, export and verify; verify fails on a tampered log', async () => {
  const ls = await cli(['audit', 'ls', '--action', 'POST /api/v1/users*'], env);
  assert.match(ls.stdout, /POST \/api\/v1\/users\s+→ user \S+\s+ok 200/, "the entry names the user it made");
  const exp = await cli(['audit', 'export'], env);
  const lines = exp.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; action: string });
  assert.ok(lines.length > 5);
  const v = await cli(['audit', 'verify'], env);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /audit log intact: \d+ entries/);
  const { sql } = await import('kysely');
  await sql`update audit_log set actor = 'someone-else' where seq = 2`.execute(hub.db.db);
  const bad = await cli(['audit', 'verify'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /AUDIT LOG TAMPERED[\s\S]*#2: entry was altered/);
});

test('passwd --revoke-tokens changes the password and revokes the API tokens; without it they stay', async () => {
  await hub.auth.createUser('pia', 'pia-password-1', 'viewer', Date.now());
  const pia = (await hub.auth.findUser('pia'))!;
  const penv = { TETHER_CLI_CONFIG: join(dir, 'pia.json'), TETHER_PASSWORD: 'pia-password-1' };
  { const r = await cli(['login', '--hub', hub.url, '-u', 'pia'], penv); assert.equal(r.code, 0, r.stderr); }
  const kept = await hub.auth.createApiToken(pia.id, { name: 'kept', scope: 'read', hostSelector: null, expiresAt: Date.now() + 3600_000 }, Date.now());
  const plain = await cli(['passwd'], { ...penv, TETHER_NEW_PASSWORD: 'pia-password-2' });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /password changed; your other sessions ended\n$/);
  assert.ok(await hub.auth.authenticate(kept.token, Date.now()), 'kept without the flag');
  const revoking = await cli(['passwd', '--revoke-tokens'], { ...penv, TETHER_PASSWORD: 'pia-password-2', TETHER_NEW_PASSWORD: 'pia-password-3' });
  assert.equal(revoking.code, 0, revoking.stderr);
  assert.match(revoking.stderr, /1 API token\(s\) revoked/);
  assert.equal(await hub.auth.authenticate(kept.token, Date.now()), undefined);
  { const r = await cli(['whoami'], penv); assert.equal(r.code, 0, r.stderr); }
});
