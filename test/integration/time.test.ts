/**
 * Time is a dependency. A hub on a test clock, with agents reporting over real sockets, is driven
 * across hour, day and retention boundaries, stopped and started again before, during and after
 * each boundary, and left down for 5 minutes, 2 hours and 3 days while its agents keep their
 * samples. After every phase the hub must answer (a login, the hosts list, health 200 — the hub of
 * issue 21 hung for good at its first top of the hour), and at the end every tier of the history
 * must hold every sample the agents delivered exactly once: no hole, no double count.
 *
 * The agents are protocol clients (testkit's simConnect) stamping samples with the test clock's
 * time, each sample with its own value, so that a lost or doubled sample changes an average. Like the
 * real agent, a simulated one keeps what the hub has not acknowledged and sends it as a backlog after
 * reconnecting; unlike it (720 samples by default), it keeps everything, so the expected history
 * is every sample but those whose hour had left the 1-minute tier when they arrived (dropped and
 * counted by the hub). The same clock drives expiries (an enrollment token, a session, an API
 * token), an alert rule's duration and the task-lost timer, across the same restarts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { createHub, loadHubConfig, TestClock, type Hub, type HubConfig } from '@tether/hub';
import { HOUR, MINUTE, unpackValues } from '@tether/hub/dist/src/modules/metrics/codec.js';
import { encodeFrame, newMessageId } from '@tether/protocol';
import { simFacts, pgSchema, newSimIdentity, simConnect, simUsage, tempDir, testDatabases, waitFor, type RawAgent, type SimIdentity } from '@tether/testkit';

const STEP = 30_000; // a sample every 30 s of the test clock
const PASSWORD = 'admin-password-for-time-tests';
const RETENTION = { raw: 6 * HOUR, m1: 2 * 86400_000, h1: 30 * 86400_000 };

interface Sim {
  name: string;
  id: SimIdentity;
  conn?: RawAgent;
  /** samples not yet acknowledged, oldest first */
  backlog: { ts: number; value: number }[];
}

class Timeline {
  hub!: Hub;
  readonly sims: Sim[];
  /** every sample made and accepted, by host name */
  readonly made = new Map<string, { ts: number; value: number }[]>();
  /** samples the hub must drop (delivered when their hour was past the 1-minute retention) since it started */
  droppedThisRun = 0;
  private next = 1;
  private token = '';
  readonly events: string[] = [];

  constructor(
    readonly clock: TestClock,
    readonly cfg: HubConfig,
  ) {
    this.sims = ['web-1', 'db-1', 'cache-1'].map((name) => ({ name, id: newSimIdentity(), backlog: [] }));
  }

  async start(): Promise<void> {
    this.droppedThisRun = 0;
    this.hub = await createHub(this.cfg, { clock: this.clock, log: pino({ level: 'silent' }) });
    // Agents come back a few seconds after the hub (their reconnect backoff): the hub's first
    // rollups run before any report, with nothing of the previous run in its caches.
    await this.settle();
    if (!this.token) this.token = (await this.hub.enroll.create({ name: 'time test', labels: {}, expiresInSec: 30 * 86400, singleUse: false, createdBy: 'test', now: this.clock.now() })).token;
    for (const s of this.sims) {
      s.conn = await simConnect(this.hub.url, s.id, { token: this.token, facts: simFacts(s.name) });
      await this.sendBacklog(s);
    }
    await this.settle();
  }

  async stop(): Promise<void> {
    for (const s of this.sims) s.conn?.close();
    const r = await this.hub.stop();
    assert.equal(r.clean, true, `the hub stopped cleanly (${r.pending.join(', ')})`);
    for (const s of this.sims) delete s.conn;
  }

  /** One sample from every host at the clock's time: sent and acknowledged, or kept for later. */
  private async sample(): Promise<void> {
    const ts = this.clock.now();
    for (const s of this.sims) {
      const smp = { ts, value: this.next++ };
      let list = this.made.get(s.name);
      if (!list) this.made.set(s.name, (list = []));
      list.push(smp);
      s.backlog.push(smp);
      if (s.conn) await this.sendBacklog(s);
    }
  }

  private async sendBacklog(s: Sim): Promise<void> {
    while (s.backlog.length) {
      const part = s.backlog.slice(0, 120);
      // What the hub keeps: samples whose hour the 1-minute tier still holds (it drops whole hours).
      const oldest = Math.floor((this.clock.now() - RETENTION.m1) / HOUR) * HOUR;
      for (const p of part.filter((x) => x.ts < oldest)) {
        const list = this.made.get(s.name)!;
        list.splice(list.indexOf(p), 1);
        this.droppedThisRun++;
      }
      const id = newMessageId();
      if (part.length === 1 && s.backlog.length === 1) s.conn!.sendRaw(encodeFrame('report.usage', simUsage(part[0]!.ts, part[0]!.value), { id }));
      else s.conn!.sendRaw(encodeFrame('report.backlog', { samples: part.map((p) => simUsage(p.ts, p.value)) }, { id }));
      const ack = await s.conn!.next('ack', 30_000);
      assert.equal(ack.re, id, 'the hub acknowledges what it committed');
      s.backlog.splice(0, part.length);
    }
  }

  /** Lets the hub finish what the clock's last move set off: within 15 s, or the hub is stuck. */
  private async settle(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the hub's rollups were still running 15 s after the clock reached ${new Date(this.clock.now()).toISOString()}: ${JSON.stringify(this.hub.scheduler.status().filter((x) => x.running))}`)), 15_000);
    });
    try {
      await Promise.race([(async () => {
        await this.hub.scheduler.idle();
        await this.hub.scheduler.run('metrics');
      })(), stuck]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs with agents reporting until the clock reaches `until`. */
  async live(until: number): Promise<void> {
    while (this.clock.now() < until) {
      await this.sample();
      this.clock.advance(Math.min(STEP, until - this.clock.now()));
      await this.hub.scheduler.idle();
    }
    await this.settle();
  }

  /** The hub is down for `ms` (the agents keep sampling), then starts again. */
  async down(ms: number): Promise<void> {
    await this.stop();
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      await this.sample();
      this.clock.advance(Math.min(STEP, end - this.clock.now()));
    }
    await this.start();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** The hub answers a login, the hosts list and health within a few seconds. */
  async answers(phase: string): Promise<void> {
    const call = async (path: string, init: RequestInit = {}) => {
      const r = await fetch(this.hub.url + path, { ...init, signal: AbortSignal.timeout(5000) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const login = await call('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    assert.equal(login.status, 200, `${phase}: login answers`);
    const token = login.json.token as string;
    const hosts = await call('/api/v1/hosts', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(hosts.status, 200, `${phase}: the hosts list answers`);
    assert.equal((hosts.json.hosts as unknown[]).length, 3);
    assert.deepEqual(this.hub.scheduler.status().filter((x) => x.failures > 0), [], `${phase}: no scheduled task failed`);
    assert.equal(this.hub.metrics.counters.writeErrors, 0, `${phase}: no metrics write failed`);
    const health = await call('/api/v1/health');
    assert.equal(health.status, 200, `${phase}: health says ok (${JSON.stringify(health.json.reasons)})`);
    this.events.push(phase);
  }
}

/**
 * Checks every tier against the samples made so far: every closed minute and every ended hour
 * inside its tier's retention holds its own samples' average, minimum and maximum, counted exactly
 * once. `final`: retention has just run, so nothing older than each tier's cut may be left either.
 */
async function verifyHistory(t: Timeline, phase: string, final = false): Promise<void> {
  const GRACE = 10_000;
  await t.hub.metrics.compact();
  const now = t.clock.now();
  const closedBefore = Math.floor((now - GRACE) / MINUTE) * MINUTE - MINUTE; // minutes before this are closed
  const compactedBefore = Math.floor((now - 2 * GRACE - MINUTE) / HOUR) * HOUR; // hours before this are compacted
  const store = t.hub.metrics.store;
  const hostIds = new Map((await t.hub.hosts.list({})).map((h) => [h.hostname, h.id]));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  for (const [name, made] of t.made) {
    const where = `${phase}, ${name}`;
    const hostId = hostIds.get(name)!;
    const byMinute = new Map<number, number[]>();
    const byHour = new Map<number, number[]>();
    for (const s of made) {
      const m = Math.floor(s.ts / MINUTE) * MINUTE;
      byMinute.set(m, [...(byMinute.get(m) ?? []), s.value]);
      const h = Math.floor(s.ts / HOUR) * HOUR;
      byHour.set(h, [...(byHour.get(h) ?? []), s.value]);
    }

    // raw: every sample inside the raw retention, once (and, after retention ran, none older).
    const rawCut = now - RETENTION.raw;
    const raw = (await store.readRaw(hostId, final ? 0 : rawCut + HOUR, now + 1, (k) => k === 'load1')).map((r) => [r.ts, r.values.load1]);
    assert.deepEqual(raw, made.filter((s) => s.ts >= (final ? rawCut : rawCut + HOUR)).map((s) => [s.ts, s.value]), `${where}: raw tier`);

    // 1 minute: every closed minute, its own avg/min/max, none twice. Retention drops 1-minute
    // chunks by whole hours: the hour holding the cut is kept.
    const m1Cut = Math.floor((now - RETENTION.m1) / HOUR) * HOUR;
    const from = final ? 0 : m1Cut + HOUR;
    const m1 = ((await store.read1m(hostId, from, closedBefore, ['load1'])).get('load1') ?? []).filter((p) => final || p[0] >= from);
    const wantM1 = [...byMinute].filter(([m]) => m >= (final ? m1Cut : from) && m < closedBefore).map(([m, v]) => [m, mean(v), Math.min(...v), Math.max(...v)]);
    const holes = wantM1.filter(([m]) => !m1.some((p) => p[0] === m)).map(([m]) => isoMinute(m!));
    assert.deepEqual(holes, [], `${where}: no minute missing`);
    assert.deepEqual(m1, wantM1, `${where}: every minute's avg/min/max, none twice`);

    // Sample counts in the compacted hours' minute chunks: each minute counted as often as sampled.
    const chunks = await t.hub.db.db.selectFrom('metric_1m').select(['hour', 'data']).where('host_id', '=', hostId).where('series', '=', 'load1').where('hour', '>=', from).execute();
    for (const c of chunks) {
      const v = unpackValues(c.data as Uint8Array);
      for (let slot = 0; slot < 60; slot++) {
        const m = Number(c.hour) + slot * MINUTE;
        const got = v[slot * 4 + 3]! > 0 ? v[slot * 4 + 3]! : 0;
        assert.equal(got, byMinute.get(m)?.length ?? 0, `${where}: samples counted in ${isoMinute(m)}`);
      }
    }
    const wantHours = [...byHour.keys()].filter((h) => h >= (final ? m1Cut : from) && h < compactedBefore);
    assert.deepEqual(chunks.map((c) => Number(c.hour)).sort(), wantHours, `${where}: every ended hour compacted`);

    // 1 hour: every compacted hour, averaged over all of its samples.
    const h1 = (await store.read1h(hostId, 0, compactedBefore, (k) => k === 'load1')).get('load1') ?? [];
    const wantH1 = [...byHour].filter(([h]) => h < compactedBefore).map(([h, v]) => [h, mean(v), Math.min(...v), Math.max(...v)]);
    assert.deepEqual(h1, wantH1, `${where}: every hour's rollup`);
  }
}

function isoMinute(ts: number): string {
  return new Date(ts).toISOString().slice(0, 16);
}

for (const engine of testDatabases()) {
  describe(`the hub across time on ${engine}`, () => {
    const dir = tempDir('tether-time-');
    const pgs = engine === 'postgres' ? pgSchema() : undefined;
    const db = pgs?.url ?? `sqlite:${dir}/tether.db`;
    // 22:47 UTC on a Monday: an hour boundary in 13 minutes and a day boundary in 73.
    const T0 = Date.UTC(2026, 11, 7, 22, 47, 0);
    const clock = new TestClock(T0);
    const cfg = loadHubConfig(
      { listen: '127.0.0.1:0', data: dir, db },
      { TETHER_ADMIN_PASSWORD: PASSWORD, TETHER_RETENTION_RAW: `${RETENTION.raw / 1000}s`, TETHER_RETENTION_1M: `${RETENTION.m1 / 1000}s`, TETHER_RETENTION_1H: `${RETENTION.h1 / 1000}s`, TETHER_LOG_LEVEL: 'silent' },
    );
    const t = new Timeline(clock, cfg);
    const at = (h: number, m: number, s = 0, day = 7) => Date.UTC(2026, 11, day, h, m, s);

    const creds = { session: '', apiToken: '', shortEnroll: '' };
    const status = async (token: string) => (await fetch(t.hub.url + '/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })).status;
    before(async () => {
      await t.start();
      // Credentials made at 22:47 on day one: a 24 h session, a 26 h API token, a 1 h enrollment token.
      const login = await fetch(t.hub.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
      creds.session = ((await login.json()) as { token: string }).token;
      const admin = (await t.hub.auth.findUser('admin'))!;
      creds.apiToken = (await t.hub.auth.createApiToken(admin.id, { name: 'nightly', scope: 'read', hostSelector: null, expiresAt: clock.now() + 26 * HOUR }, clock.now())).token;
      creds.shortEnroll = (await t.hub.enroll.create({ name: 'short', labels: {}, expiresInSec: 3600, singleUse: false, createdBy: 'test', now: clock.now() })).token;
    });
    after(async () => {
      await t.hub?.stop();
      rmSync(dir, { recursive: true, force: true });
      await pgs?.drop();
    });

    test('restarts before, during and after an hour boundary and a day boundary', async () => {
      for (const [name, b] of [
        ['hour', at(23, 0)],
        ['day', at(0, 0, 0, 8)],
      ] as const) {
        await t.live(b - 90_000);
        await t.restart();
        await t.answers(`${name}: restarted 90 s before ${isoMinute(b)}`);
        // During: the boundary's last minute is still open, the ended hour not yet compacted.
        await t.live(b + 5_000);
        await t.restart();
        await t.answers(`${name}: restarted 5 s after ${isoMinute(b)}`);
        await t.live(b + 3 * MINUTE);
        await t.answers(`${name}: 3 minutes after ${isoMinute(b)}`);
        await t.restart();
        await t.answers(`${name}: restarted 3 minutes after ${isoMinute(b)}`);
        await verifyHistory(t, `after the ${name} boundary`);
      }
      // 1 h 16 min on, across restarts: the 1 h enrollment token has expired, the session and the API token have not.
      await assert.rejects(simConnect(t.hub.url, newSimIdentity(), { token: creds.shortEnroll, facts: simFacts('late-1') }), /token_expired/);
      assert.equal(await status(creds.session), 200, 'the 24 h session still works');
      assert.equal(await status(creds.apiToken), 200, 'the 26 h API token still works');
    });

    test('an alert waits its duration on the hub clock, and a firing alert lives through a restart as the same alert', async () => {
      const from = t.clock.now();
      const rule = await t.hub.alerts.createRule({ name: 'load climbs', metric: 'load1', op: '>', threshold: 0, forSec: 600, resolveForSec: 60 } as never);
      await t.live(from + 9 * MINUTE);
      assert.deepEqual(t.hub.alerts.active().filter((a) => a.ruleId === rule.id && a.state === 'firing'), [], 'not before 10 minutes');
      await t.live(from + 11 * MINUTE);
      const firing = t.hub.alerts.active().filter((a) => a.ruleId === rule.id && a.state === 'firing');
      assert.equal(firing.length, 3, 'every host, once its 10 minutes passed');
      for (const a of firing) assert.ok(a.firedAt! - a.startedAt >= 600_000 && a.firedAt! <= t.clock.now(), `fired after 10 minutes of the hub's time (${(a.firedAt! - a.startedAt) / 1000} s)`);
      await t.hub.alerts.settled();
      await t.restart();
      await t.live(t.clock.now() + 2 * MINUTE);
      const after = t.hub.alerts.active().filter((a) => a.ruleId === rule.id);
      assert.deepEqual(after.map((a) => a.id).sort(), firing.map((a) => a.id).sort(), 'the same three alerts, still firing');
      await t.hub.alerts.deleteRule(rule.id);
    });

    test('down for 5 minutes across an hour boundary, then for 2 hours, then for 3 days (past the raw and 1-minute retention)', async () => {
      await t.live(at(0, 57, 0, 8));
      await t.down(5 * MINUTE);
      await t.answers('after 5 minutes down across 01:00');
      await verifyHistory(t, 'after 5 minutes down');
      await t.live(at(1, 40, 0, 8));
      await t.down(2 * HOUR);
      await t.answers('after 2 hours down across 02:00 and 03:00');
      await verifyHistory(t, 'after 2 hours down');
      await t.live(at(4, 10, 0, 8));
      await t.down(3 * 86400_000);
      assert.equal(await status(creds.session), 401, 'the 24 h session expired while the hub was down');
      assert.equal(await status(creds.apiToken), 401, 'so did the 26 h API token');
      await t.answers('after 3 days down');
      assert.ok(t.droppedThisRun > 0, 'the 3-day backlog reaches past the 1-minute retention');
      assert.equal(t.hub.metrics.counters.tooOld, t.droppedThisRun, 'the hub dropped exactly the samples whose hour had left the 1-minute tier');
      await t.live(at(4, 30, 0, 11));
      await t.answers('20 minutes after coming back');
      await verifyHistory(t, 'after 3 days down');
    });

    test('every tier holds every delivered sample exactly once, and nothing past its retention', async () => {
      // Close the last minute and compact the last ended hour, then apply retention once more.
      t.clock.advance(HOUR);
      await t.hub.scheduler.idle();
      await t.hub.scheduler.run('metrics');
      await t.hub.metrics.prune(t.clock.now());
      await verifyHistory(t, 'at the end', true);
      assert.equal(t.events.length, 12, 'every phase answered');
    });

    test('a task whose host went away is lost after 10 minutes of the hub’s clock, counted again from a restart', async () => {
      const id = newSimIdentity();
      const worker = await simConnect(t.hub.url, id, { token: (await t.hub.enroll.create({ name: 'w', labels: {}, expiresInSec: 600, singleUse: true, createdBy: 'test', now: t.clock.now() })).token, facts: simFacts('worker-1'), capabilities: ['metrics', 'exec'] });
      worker.sendRaw(encodeFrame('task.sync', { running: [], done: [] }));
      const admin = (await t.hub.auth.findUser('admin'))!;
      const token = (await t.hub.auth.createApiToken(admin.id, { name: 'jobs', scope: 'execute', hostSelector: null, expiresAt: t.clock.now() + HOUR }, t.clock.now())).token;
      const r = await fetch(t.hub.url + '/api/v1/exec', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ target: { hosts: [id.agentId] }, command: ['sleep', '600'], mode: 'async' }) });
      const job = ((await r.json()) as { job: { id: string } }).job;
      await worker.next('task.start');
      const taskState = async () => (await t.hub.jobs.getJob(job.id))!.tasks[0]!;
      worker.close(); // the host goes away with the command sent
      await waitFor(async () => !t.hub.link.isOnline(id.agentId!), 'the worker offline');
      t.clock.advance(5 * MINUTE);
      await t.hub.scheduler.idle();
      assert.equal((await taskState()).state, 'sent', 'not lost after 5 minutes');
      await t.restart(); // the hub does not know how long the host was gone before it started
      t.clock.advance(6 * MINUTE);
      await t.hub.scheduler.idle();
      assert.equal((await taskState()).state, 'sent', '11 minutes after the host went, 6 after the restart: not yet');
      t.clock.advance(5 * MINUTE);
      await t.hub.scheduler.idle();
      await t.hub.scheduler.run('jobs.sweep');
      await waitFor(async () => (await taskState()).state === 'done', 'the task ended');
      const task = await taskState();
      assert.equal(task.status, 'lost');
      assert.match(task.error!, /disconnected for (6[0-9][0-9]) s/);
    });
  });
}
