/**
 * Cron and power through the API and the CLI against a real hub and a real agent on this machine
 * (no crontab binary and no systemd as PID 1 here: what is checked is what the agent decides before
 * either is used, and what it says when the host cannot do a thing).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { encodeFrame } from '@tether/protocol';
import { TestAgent, TestHub, bareHub, cli, simFacts, newSimIdentity, simConnect, tempDir, waitFor } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let agent: TestAgent;
let id: string;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-managers-ops-');
  env = await hub.cliEnv(dir);
  agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'cron', 'power'] });
  id = await agent.waitConnected();
});
after(async () => {
  await agent?.stop();
  agent?.cleanup();
  await hub?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('cron refuses a schedule that never fires: validate, create, update and the CLI say why', async () => {
  const never = '0 0 31 2 *';
  const v = await hub.api('GET', `/api/v1/hosts/${id}/cron/validate?schedule=${encodeURIComponent(never)}`);
  assert.equal(v.valid, false);
  assert.deepEqual(v.nextRuns, []);
  assert.match(v.message, /never fires: no date has day-of-month 31 in month 2/);
  const ok = await hub.api('GET', `/api/v1/hosts/${id}/cron/validate?schedule=${encodeURIComponent('0 3 * * *')}`);
  assert.equal(ok.valid, true);
  assert.equal(ok.nextRuns.length, 5);

  const create = await hub.raw('POST', `/api/v1/hosts/${id}/cron`, { schedule: never, command: 'true' });
  assert.equal(create.status, 400);
  assert.match(((await create.json()) as { message: string }).message, /never fires/);
  const update = await hub.raw('PATCH', `/api/v1/hosts/${id}/cron/0123456789ab`, { schedule: '0 0 30 2 *' });
  assert.equal(update.status, 400);
  assert.match(((await update.json()) as { message: string }).message, /never fires/);

  const check = await cli(['cron', 'check', id, never], env);
  assert.equal(check.code, 1);
  assert.match(check.stdout, /^invalid: "0 0 31 2 \*" never fires/);
  assert.doesNotMatch(check.stdout, /at boot/);
  const add = await cli(['cron', 'add', id, never, 'true'], env);
  assert.equal(add.code, 1);
  assert.match(add.stderr, /never fires.*\(400 bad_request\)/);
});

test('hibernate and suspend: GET power says whether each is possible and why not; a request where systemd says no is refused with the reason, audited; the capability lock applies', async () => {
  const st = await hub.api('GET', `/api/v1/hosts/${id}/power`);
  assert.ok(st.uptimeSec > 0);
  for (const what of ['hibernate', 'suspend']) {
    // This machine has no systemd as PID 1: systemctl cannot say yes here.
    assert.equal(st[what].possible, false, JSON.stringify(st));
    assert.match(st[what].reason, new RegExp(`systemctl can-${what}`), JSON.stringify(st));
    const r = await hub.raw('POST', `/api/v1/hosts/${id}/power`, { action: what });
    const body = (await r.json()) as { error: string; message: string };
    assert.equal(r.status, 409, JSON.stringify(body));
    assert.equal(body.error, 'unavailable');
    assert.match(body.message, new RegExp(`^${what} is not possible: .*systemctl can-${what}`));
  }
  const audit = await hub.api('GET', `/api/v1/audit?action=${encodeURIComponent('POST /api/v1/hosts/:id/power')}`);
  const entry = audit.entries.find((e: any) => e.params?.body?.action === 'hibernate');
  assert.ok(entry, JSON.stringify(audit.entries));
  assert.equal(entry.status, 409);
  assert.deepEqual(entry.targets.length > 0, true);

  const cliStatus = await cli(['power', 'status', id], env);
  assert.equal(cliStatus.code, 0, cliStatus.stderr);
  assert.match(cliStatus.stdout, /^hibernate: not possible — .*can-hibernate/m);
  assert.match(cliStatus.stdout, /^suspend: not possible — .*can-suspend/m);
  const unconfirmed = await cli(['power', 'suspend', id], env);
  assert.equal(unconfirmed.code, 1);
  assert.match(unconfirmed.stderr, /add --yes/);
  const refused = await cli(['power', 'hibernate', id, '--yes'], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /hibernate is not possible: .*\(409 unavailable\)/);

  const locked = TestAgent.start(hub.url, { token: await hub.enrollToken() });
  try {
    const lockedId = await locked.waitConnected();
    const r = await hub.raw('POST', `/api/v1/hosts/${lockedId}/power`, { action: 'suspend' });
    assert.equal(r.status, 403);
    assert.equal(((await r.json()) as { error: string }).error, 'refused');
  } finally {
    await locked.stop();
    locked.cleanup();
  }
});

test('agents from before hibernate and suspend: GET power still answers, saying they cannot (an error reply at once; no reply within 12 s)', async () => {
  const token = await hub.enrollToken();
  const old = async (answerSleep: boolean, n: number) => {
    const a = await simConnect(hub.url, newSimIdentity(), { token, facts: simFacts(`old-${n}`, `10.8.0.${n}`, `02:00:00:00:08:0${n}`) });
    a.onMessage = (m) => {
      if (m.type !== 'power.request') return;
      const op = (m.body as { op: string }).op;
      if (op === 'status') a.sendRaw(encodeFrame('power.response', { ok: true, uptimeSec: 100, bootTime: 1 }, { re: m.id }));
      // An older agent cannot read the op: it says so (this version), or says nothing (earlier ones).
      else if (answerSleep) a.sendRaw(encodeFrame('error', { code: 'bad_frame', message: 'bad power.request body: /op must be equal to one of the allowed values' }, { re: m.id }));
    };
    return a;
  };
  const [replies, silent] = await Promise.all([old(true, 1), old(false, 2)]);
  try {
    const t0 = Date.now();
    const [a, b] = await Promise.all([
      hub.api('GET', `/api/v1/hosts/${(await hub.hosts('?q=old-1')).hosts[0].id}/power`).then((r) => ({ r, ms: Date.now() - t0 })),
      hub.api('GET', `/api/v1/hosts/${(await hub.hosts('?q=old-2')).hosts[0].id}/power`).then((r) => ({ r, ms: Date.now() - t0 })),
    ]);
    for (const { r } of [a, b]) {
      assert.equal(r.uptimeSec, 100);
      assert.equal(r.hibernate.possible, false);
      assert.match(r.hibernate.reason, /older than hibernate and suspend/);
      assert.match(r.suspend.reason, /older than hibernate and suspend/);
    }
    assert.ok(a.ms < 3000, `an error reply is taken at once: ${a.ms} ms`);
    assert.ok(b.ms >= 11_000 && b.ms < 16_000, `silence is bounded: ${b.ms} ms`);
  } finally {
    replies.close();
    silent.close();
  }
});

test('the agent answers a request it cannot read (an op added after it) with an error reply naming that request', async () => {
  const hub = await bareHub('future');
  const a = TestAgent.start(hub.url, { token: 'any-token-will-do', capabilities: ['metrics', 'power'] });
  try {
    await a.waitConnected();
    hub.send(JSON.stringify({ v: 1, type: 'power.request', id: 'future-op-1', body: { op: 'teleport' } }));
    const err = await waitFor(() => hub.received.find((m) => m.type === 'error' && m.re === 'future-op-1'), 'the error reply', 10_000);
    assert.equal((err.body as { code: string }).code, 'bad_frame');
    assert.match((err.body as { message: string }).message, /power\.request/);
  } finally {
    await a.stop();
    a.cleanup();
    await hub.close();
  }
});
