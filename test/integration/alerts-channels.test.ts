/**
 * Channels against real receivers, and the anomaly rules fed today: an email reaches a real SMTP
 * server (aiosmtpd, STARTTLS and AUTH) and is parsed; a receiver that fails twice gets the
 * notification on the third attempt while a dead channel never delays the others; DingTalk and
 * Feishu robots get their documented signatures; secrets never come back in reads, the audit
 * log or the hub's log; a TLS endpoint's certificate near expiry fires and resolves when renewed;
 * a host whose clock runs ahead fires clock skew; the CLI drives it all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createNetServer } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { TestAgent, TestHub, cli, simFacts, newSimIdentity, simConnect, tempDir, waitFor } from '@tether/testkit';
import { receiver } from './alert-helpers.js';

const HUB_ENV = { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_ALERT_RETRY_BASE: '0.3s', TETHER_ALERT_RETRY_ATTEMPTS: '3', TETHER_ALERT_SEND_TIMEOUT: '2s', TETHER_ALERT_CERT_CHECK_INTERVAL: '0.5s', TETHER_RECONNECT_GRACE: '0s' };
const SMTP_PASSWORD = 'smtp-password-never-shown';
const ROBOT_SECRET = 'SEC-robot-signing-secret';

// A real SMTP server: STARTTLS required, AUTH checked, each message parsed and printed as a JSON line.
const SMTPD = `
import asyncio, json, ssl, sys
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
class H:
    async def handle_DATA(self, server, session, envelope):
        m = message_from_bytes(envelope.content, policy=policy.default)
        text = m.get_body(('plain',)); html = m.get_body(('html',))
        print(json.dumps({'from': envelope.mail_from, 'to': envelope.rcpt_tos, 'subject': m['subject'], 'text': text.get_content() if text else None, 'html': html.get_content() if html else None, 'tls': session.ssl is not None, 'authenticated': bool(session.authenticated)}), flush=True)
        return '250 OK'
def auth(server, session, envelope, mechanism, data):
    return AuthResult(success=data.login == b'alerts' and data.password == sys.argv[4].encode())
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH); ctx.load_cert_chain(sys.argv[2], sys.argv[3])
c = Controller(H(), hostname='127.0.0.1', port=int(sys.argv[1]), tls_context=ctx, require_starttls=True, authenticator=auth, auth_required=True)
c.start(); print('READY', flush=True)
asyncio.get_event_loop().run_forever()
`;

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let agent: TestAgent;
let agentId: string;
let smtpd: ChildProcess;
let smtpPort: number;
const mails: any[] = [];
let tlsServer: TlsServer;

function selfSigned(name: string, days: number): { key: string; cert: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

before(async () => {
  dir = tempDir('tether-alert-ch-');
  hub = await TestHub.start({ env: HUB_ENV });
  env = await hub.cliEnv(dir);
  for (const r of (await hub.api('GET', '/api/v1/alerts/rules')).rules) await hub.api('PATCH', `/api/v1/alerts/rules/${r.id}`, { enabled: false });
  agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), env: { TETHER_COLLECTOR_INTERVALS: 'usage=1s' } });
  agentId = await agent.waitConnected();
  selfSigned('smtp', 30);
  const probe = createNetServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  smtpPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  smtpd = spawn('/usr/bin/python3', ['-c', SMTPD, String(smtpPort), join(dir, 'smtp.crt'), join(dir, 'smtp.key'), SMTP_PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  smtpd.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (l.startsWith('{')) mails.push(JSON.parse(l));
      else if (l === 'READY') mails.push({ ready: true });
    }
  });
  await waitFor(() => mails.some((m) => m.ready), 'aiosmtpd ready', 15_000);
});
after(async () => {
  smtpd?.kill();
  tlsServer?.close();
  await agent.stop();
  agent.cleanup();
  await hub.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('a firing rule reaches email (STARTTLS, AUTH), a flaky receiver after retries, while a dead channel delays neither', async () => {
  const flaky = await receiver((n) => (n < 2 ? 500 : 200));
  const email = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'ops mail', type: 'email', config: { host: '127.0.0.1', port: smtpPort, tls: 'starttls', tlsVerify: false, from: 'Tether <tether@example.test>', to: ['ops@example.test'], username: 'alerts' }, secret: { password: SMTP_PASSWORD } })).id;
  const flakyId = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'flaky hook', type: 'webhook', config: { url: flaky.url } })).id;
  // Nothing listens on port 9 of loopback: every attempt fails at once.
  const deadId = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'dead hook', type: 'webhook', config: { url: 'http://127.0.0.1:9/hook' } })).id;
  // A lowered threshold: every host has memory.
  const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'memory present', metric: 'memory_bytes|total', op: '>', threshold: 0, forSec: 0, severity: 'info', scope: { hosts: [agentId] }, channels: [deadId, email, flakyId], groupWindowSec: 0.2 });
  const mail = await waitFor(() => mails.find((m) => m.subject?.includes('memory present')), 'the alert email', 20_000);
  assert.equal(mail.tls, true, 'STARTTLS was used');
  assert.equal(mail.authenticated, true, 'logged in with the channel’s password (the server requires it)');
  assert.deepEqual(mail.to, ['ops@example.test']);
  assert.equal(mail.from, 'tether@example.test');
  assert.match(mail.subject, /^\[FIRING 1\] memory present \(info\)$/);
  assert.match(mail.text, new RegExp(`memory_bytes\\|total = \\d+ \\(> 0\\)`));
  assert.match(mail.html, /<li>.*memory_bytes\|total/);
  const got = await waitFor(() => flaky.got[0], 'the flaky receiver’s third attempt', 20_000);
  assert.equal(got.body.firing[0].hostId, agentId);
  const log = await waitFor(async () => {
    const d = (await hub.api('GET', `/api/v1/alerts/deliveries?rule=${rule.id}`)).deliveries;
    const by = (id: string) => d.find((x: any) => x.channelId === id);
    return by(deadId)?.status === 'failed' && by(flakyId)?.status === 'ok' && by(email)?.status === 'ok' ? { dead: by(deadId), flaky: by(flakyId), mail: by(email) } : undefined;
  }, 'the delivery log settles', 20_000);
  assert.equal(log.flaky.attempts, 3);
  assert.equal(log.dead.attempts, 3);
  assert.match(log.dead.lastError, /ECONNREFUSED|fetch failed/);
  assert.equal(log.mail.attempts, 1);
  assert.ok(log.mail.updatedAt < log.dead.updatedAt, 'the email went out while the dead channel was still retrying');
  await hub.api('DELETE', `/api/v1/alerts/rules/${rule.id}`);
  flaky.server.close();
});

test('DingTalk and Feishu robots get their documented signatures; Slack gets text; test-send answers how it went', async () => {
  const robot = await receiver();
  const ding = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'ding', type: 'dingtalk', secret: { url: `${robot.url}?access_token=DING-TOKEN`, signSecret: ROBOT_SECRET } })).id;
  const fei = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'fei', type: 'feishu', secret: { url: robot.url + '/feishu-token', signSecret: ROBOT_SECRET } })).id;
  const slack = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'slack', type: 'slack', secret: { url: robot.url + '/services/T/B/slack-token' } })).id;
  for (const id of [ding, fei, slack]) {
    const r = await hub.api('POST', `/api/v1/alerts/channels/${id}/test`);
    assert.equal(r.status, 'ok', JSON.stringify(r));
    assert.equal(r.kind, 'test');
  }
  assert.equal(robot.got.length, 3);
  const [d, f, s] = robot.got;
  // DingTalk: timestamp (ms) and sign in the query; sign = base64(HMAC-SHA256(secret, ts + "\n" + secret)).
  assert.equal(d!.body.msgtype, 'markdown');
  assert.match(d!.body.markdown.title, /\[TEST\]/);
  // Feishu: timestamp (s) and sign in the body; sign = base64(HMAC-SHA256(key = ts + "\n" + secret, "")).
  assert.equal(f!.body.sign, createHmac('sha256', `${f!.body.timestamp}\n${ROBOT_SECRET}`).update('').digest('base64'));
  assert.ok(Math.abs(Number(f!.body.timestamp) - Date.now() / 1000) < 60);
  assert.equal(f!.body.msg_type, 'text');
  assert.match(s!.body.text, /\[TEST\] Tether channel slack/);
  // A failing test-send says why, with the robot's URL kept out of the answer.
  const bad = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'bad ding', type: 'dingtalk', secret: { url: 'http://127.0.0.1:9/robot/send?access_token=SECRET-TOKEN-XYZ' } })).id;
  const r = await hub.api('POST', `/api/v1/alerts/channels/${bad}/test`);
  assert.equal(r.status, 'failed');
  assert.ok(!JSON.stringify(r).includes('SECRET-TOKEN-XYZ'));
  robot.server.close();
});

test('the DingTalk signature in the query matches the documented algorithm', async () => {
  const robot = await receiver();
  const paths: string[] = [];
  robot.server.prependListener('request', (req) => paths.push(req.url!));
  const id = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'ding2', type: 'dingtalk', secret: { url: `${robot.url}?access_token=T`, signSecret: ROBOT_SECRET } })).id;
  assert.equal((await hub.api('POST', `/api/v1/alerts/channels/${id}/test`)).status, 'ok');
  const q = new URL(paths[0]!, 'http://x').searchParams;
  assert.equal(q.get('access_token'), 'T');
  assert.equal(q.get('sign'), createHmac('sha256', ROBOT_SECRET).update(`${q.get('timestamp')}\n${ROBOT_SECRET}`).digest('base64'));
  robot.server.close();
});

test('secrets are never shown in reads, the audit log or the hub log', async () => {
  const list = await hub.api('GET', '/api/v1/alerts/channels');
  const text = JSON.stringify(list);
  for (const s of [SMTP_PASSWORD, ROBOT_SECRET, 'DING-TOKEN', 'feishu-token', 'slack-token']) assert.ok(!text.includes(s), `${s} in GET channels`);
  const mail = list.channels.find((c: any) => c.type === 'email');
  assert.deepEqual(mail.secret, { password: { set: true } });
  assert.equal(mail.config.username, 'alerts');
  const audit = JSON.stringify(await hub.api('GET', '/api/v1/audit?action=' + encodeURIComponent('POST /api/v1/alerts/channels')));
  assert.ok(audit.includes('alerts/channels'), 'channel changes are audited');
  for (const s of [SMTP_PASSWORD, ROBOT_SECRET, 'DING-TOKEN', 'slack-token']) assert.ok(!audit.includes(s), `${s} in the audit log`);
  const logs = hub.proc.output();
  for (const s of [SMTP_PASSWORD, ROBOT_SECRET, 'DING-TOKEN', 'slack-token', 'SECRET-TOKEN-XYZ']) assert.ok(!logs.includes(s), `${s} in the hub log`);
});

test('a TLS endpoint whose certificate expires within the threshold fires, and resolves once renewed', async () => {
  tlsServer = createTlsServer(selfSigned('short', 5), (s) => s.end()).listen(0, '127.0.0.1');
  await new Promise((r) => tlsServer.once('listening', r));
  const endpoint = `127.0.0.1:${(tlsServer.address() as { port: number }).port}`;
  const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'cert soon', anomaly: 'cert_expiry', threshold: 14, params: { endpoint }, forSec: 0, resolveForSec: 0 });
  assert.equal(rule.op, '<');
  const a = await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.find((x: any) => x.state === 'firing'), 'cert alert firing', 15_000);
  assert.equal(a.subject, endpoint);
  assert.equal(a.hostId, '');
  assert.ok(a.value > 4 && a.value <= 5, `about 5 days left: ${a.value}`);
  assert.match(a.detail, /CN=short/);
  tlsServer.setSecureContext(selfSigned('renewed', 90));
  await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.length === 0, 'resolved after renewal', 15_000);
  const h = (await hub.api('GET', `/api/v1/alerts/history?rule=${rule.id}`)).alerts;
  assert.equal(h[0].state, 'resolved');
  await hub.api('DELETE', `/api/v1/alerts/rules/${rule.id}`);
});

test('a host whose clock runs two minutes ahead fires clock skew, and resolves when its reports are on time again', async () => {
  const id = newSimIdentity();
  const sim = await simConnect(hub.url, id, { token: await hub.enrollToken(), facts: simFacts('skewed-host') });
  const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'clock skew', anomaly: 'clock_skew', threshold: 30, forSec: 0, resolveForSec: 0, scope: { hosts: [id.agentId] } });
  const self = (ts: number) => ({ ts, pid: 1, uptimeSec: 1, rssBytes: 1e7, heapUsedBytes: 1e6, eventLoopLagMs: { mean: 0, p99: 0, max: 0 }, counters: {} });
  const { encodeFrame } = await import('@tether/protocol');
  sim.sendRaw(encodeFrame('report.self', self(Date.now() + 120_000)));
  const a = await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.find((x: any) => x.state === 'firing'), 'clock skew firing');
  assert.ok(a.value > 100 && a.value < 140, `about 120 s: ${a.value}`);
  assert.match(a.detail, /ahead/);
  sim.sendRaw(encodeFrame('report.self', self(Date.now())));
  await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.length === 0, 'clock skew resolved');
  sim.close();
  await hub.api('DELETE', `/api/v1/alerts/rules/${rule.id}`);
});

test('the CLI manages rules, presets, channels and silences, and lists alerts (--json)', async () => {
  const hook = await receiver();
  const j = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = await cli([...args, '--json'], { ...env, ...extra });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const ch = await j(['channel', 'add', 'webhook', '--name', 'cli hook', '--url', hook.url, '--header', 'x-auth=abc'], { TETHER_CHANNEL_SECRET: 'cli-hmac' });
  assert.deepEqual(ch.secret, { hmacKey: { set: true }, headers: { set: true, names: ['x-auth'] } });
  assert.ok((await j(['channel', 'ls'])).some((c: any) => c.id === ch.id));
  assert.equal((await j(['channel', 'test', ch.id])).status, 'ok');
  assert.equal(hook.got[0]!.headers['x-tether-signature-256'], 'sha256=' + createHmac('sha256', 'cli-hmac').update(hook.got[0]!.raw).digest('hex'));
  const rule = await j(['rule', 'add', '--name', 'cli memory', '--metric', 'memory_used_percent', '--op', '>', '--threshold', '0', '--for', '0s', '--host', agentId, '--channel', ch.id, '--group', '0.2s']);
  assert.equal(rule.metric, 'memory_used_percent');
  const firing = await waitFor(async () => (await j(['alert', 'ls', '--rule', rule.id])).find((a: any) => a.state === 'firing'), 'cli alert firing');
  assert.equal(firing.hostId, agentId);
  const human = await cli(['alert', 'ls'], env);
  assert.match(human.stdout, /cli memory/);
  const sil = await j(['silence', 'add', '--host', agentId, '--for', '1h', '--reason', 'testing the cli']);
  assert.ok((await j(['silence', 'ls'])).some((s: any) => s.id === sil.id && s.active));
  await j(['silence', 'rm', sil.id]);
  assert.equal((await j(['rule', 'disable', rule.id])).enabled, false);
  const hist = await waitFor(async () => (await j(['alert', 'history', '--rule', rule.id])).find((a: any) => a.state === 'resolved'), 'cli history');
  assert.equal(hist.endReason, 'rule_changed');
  assert.equal((await j(['rule', 'enable', rule.id])).enabled, true);
  // Presets: edit one, delete another, reset puts both back as shipped.
  await hub.api('PATCH', '/api/v1/alerts/rules/preset-cpu', { threshold: 10 });
  await j(['rule', 'rm', 'preset-swap']);
  const reset = await j(['rule', 'reset-presets']);
  assert.equal(reset.length, 14, 'eight metric and host presets, six anomaly presets');
  assert.ok(reset.some((r: any) => r.id === 'preset-container-restart-loop'));
  const rules = await j(['rule', 'ls']);
  assert.equal(rules.find((r: any) => r.id === 'preset-cpu').threshold, 90);
  assert.ok(rules.find((r: any) => r.id === 'preset-swap'));
  const inUse = await cli(['channel', 'rm', ch.id], env);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /cli memory/);
  await j(['rule', 'rm', rule.id]);
  await j(['channel', 'rm', ch.id]);
  const bad = await cli(['rule', 'add', '--name', 'x', '--metric', 'no_such_metric', '--threshold', '1'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown metric family/);
  hook.server.close();
});
