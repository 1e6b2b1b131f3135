/**
 * Several hubs in one cluster: three real hub processes on one PostgreSQL schema and the machine's
 * NATS (a subject prefix of this run's own), real agents. An agent held by hub B is seen online
 * and answers a request made through hub A, is revoked through hub A; exactly one hub runs each
 * singleton, and killing the evaluator's hub moves it within 10 s without notifying an alert twice;
 * hubs that may not join are refused with a reason. NATS down (a private nats-server the test
 * stops and starts again): the hub says "degraded", keeps serving its own agents, and converges
 * when NATS is back.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import WebSocket from 'ws';
import { PG_URL, TERMINAL_USER_TOML, TestAgent, TestHub, pgSchema, waitFor, type PgSchema } from '@tether/testkit';
import { receiver } from './alert-helpers.js';

const NATS = process.env.TETHER_TEST_NATS ?? 'nats://127.0.0.1:4222';
const HUB_ENV = { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_ALERT_RETRY_BASE: '0.2s', TETHER_RECONNECT_GRACE: '0s' };
const FAST = { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=30s,connections=30s,sensors=30s,gpu=30s,self=30s' };

interface Health {
  status: string;
  reasons?: string[];
  /** GET /api/v1/cluster (the public health route says less: no addresses) */
  cluster: { mode: string; hubId: string; hubs: { id: string; url: string; draining: boolean }[]; leases: string[]; bus?: { state: string; servers: string[] } };
}

/** Rounds the alert evaluator has run on hub `h` (its scheduler task, from the health route). */
const evalRounds = async (h: TestHub): Promise<number> => {
  const pub = (await (await h.raw('GET', '/api/v1/health', undefined, false)).json()) as { tasks: { name: string; runs: number }[] };
  return pub.tasks.find((x) => x.name === 'alerts.evaluate')?.runs ?? 0;
};

/** Waits until hub `h` has evaluated `n` more rounds (each one could have sent a second notice). */
const roundsLater = async (h: TestHub, n: number): Promise<void> => {
  const from = await evalRounds(h);
  await waitFor(async () => (await evalRounds(h)) >= from + n, `${n} more evaluation rounds`, 10_000, 100);
};

const health = async (h: TestHub): Promise<Health> => {
  const pub = (await (await h.raw('GET', '/api/v1/health', undefined, false)).json()) as { status: string; reasons?: string[] };
  const cluster = await h.api('GET', '/api/v1/cluster');
  return { status: pub.status, ...(pub.reasons ? { reasons: pub.reasons } : {}), cluster };
};

async function startHub(shared: { url: string; key: string; prefix: string; nats?: string }, env: NodeJS.ProcessEnv = {}): Promise<TestHub> {
  return TestHub.start({ db: 'postgres', dbUrl: shared.url, secretKeyHex: shared.key, heartbeat: '0.5s', env: { ...HUB_ENV, ...env }, extraArgs: ['--nats', shared.nats ?? NATS, '--cluster-prefix', shared.prefix] });
}

async function sql(schemaUrl: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const schema = new URL(schemaUrl).searchParams.get('schema')!;
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path="${schema}"` });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

describe('a cluster of three hubs on PostgreSQL and NATS', () => {
  let db: PgSchema;
  let shared: { url: string; key: string; prefix: string };
  let a: TestHub, b: TestHub, c: TestHub;
  let agent: TestAgent;
  let agentId: string;
  const extra: TestHub[] = [];

  before(async () => {
    db = pgSchema();
    shared = { url: db.url, key: randomBytes(32).toString('hex'), prefix: `t${randomBytes(5).toString('hex')}` };
    // The first creates the schema and takes the singletons; the others join it.
    a = await startHub(shared);
    [b, c] = await Promise.all([startHub(shared), startHub(shared)]);
    agent = TestAgent.start(b.url, { token: await a.enrollToken(), capabilities: ['metrics', 'process', 'exec'], env: FAST });
    agentId = await agent.waitConnected();
    for (const r of (await a.api('GET', '/api/v1/alerts/rules')).rules) await a.api('PATCH', `/api/v1/alerts/rules/${r.id}`, { enabled: false });
  });
  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    for (const h of [a, b, c, ...extra]) await h?.cleanup();
    await db?.drop();
  });

  test('every hub sees the three, and each singleton runs on exactly one of them', async () => {
    for (const h of [a, b, c]) {
      const hl = await waitFor(async () => {
        const x = await health(h);
        return x.cluster.hubs.length === 3 && x;
      }, 'three hubs in health');
      assert.equal(hl.status, 'ok');
      assert.equal(hl.cluster.mode, 'cluster');
      assert.equal(hl.cluster.bus?.state, 'connected');
    }
    // The health route needs no login: it counts hubs and names singletons, never an address.
    const pub = (await (await a.raw('GET', '/api/v1/health', undefined, false)).json()) as { cluster: { hubs: number; bus: string } };
    assert.equal(pub.cluster.hubs, 3);
    assert.equal(pub.cluster.bus, 'connected');
    assert.doesNotMatch(JSON.stringify(pub), /nats:\/\/|127\.0\.0\.1:\d+/);
    const all = await Promise.all([a, b, c].map(health));
    for (const lease of ['alerts', 'maintenance']) assert.equal(all.filter((x) => x.cluster.leases.includes(lease)).length, 1, `one holder of ${lease}`);
    assert.equal(new Set(all.map((x) => x.cluster.hubId)).size, 3);
  });

  test('an agent held by hub B is online on hub A and answers a request made through hub A', async () => {
    const onA = await waitFor(async () => {
      const h = await a.api('GET', `/api/v1/hosts/${agentId}`);
      return h.online && h;
    }, 'online on hub A');
    assert.ok(onA.hostname);
    assert.equal((await c.hosts('?status=online')).total, 1);
    // process.request goes A → NATS → B → the agent's socket → back.
    const ps = await a.api('GET', `/api/v1/hosts/${agentId}/ps`);
    assert.ok(ps.processes.some((p: { pid: number }) => p.pid === agent.proc.pid), 'the agent process itself is listed');
    const stats = (await health(a)).cluster.bus as unknown as { stats: { requests: number } };
    assert.ok(stats.stats.requests >= 1, 'hub A forwarded it over the bus');
  });

  test('an agent that stops is offline on every hub at once', async () => {
    const other = TestAgent.start(c.url, { token: await a.enrollToken(), env: FAST });
    const id = await other.waitConnected();
    for (const h of [a, b]) await h.waitOnline(id, true, 5000);
    const t0 = performance.now();
    await other.stop();
    for (const h of [a, b]) await h.waitOnline(id, false, 5000);
    assert.ok(performance.now() - t0 < 3000, `offline everywhere in ${Math.round(performance.now() - t0)} ms`);
    other.cleanup();
    // A request to it now is refused at once ("no responders"), not after a timeout.
    const r0 = performance.now();
    const r = await a.raw('GET', `/api/v1/hosts/${id}/ps`);
    assert.equal(r.status, 409);
    assert.ok(performance.now() - r0 < 1000);
  });

  test('revoking through hub A closes the agent’s socket on hub C', async () => {
    const other = TestAgent.start(c.url, { token: await a.enrollToken(), env: FAST });
    const id = await other.waitConnected();
    await a.waitOnline(id, true, 5000);
    await a.api('POST', `/api/v1/hosts/${id}/revoke`, {});
    await other.proc.waitForLine(/revoked/, 5000);
    await c.waitOnline(id, false, 5000);
    await other.stop();
    other.cleanup();
  });

  test('killing the evaluator’s hub moves the evaluator within 10 s, and no alert is notified twice', async (t) => {
    const hook = await receiver();
    try {
      const channel = (await a.api('POST', '/api/v1/alerts/channels', { name: 'cluster hook', type: 'webhook', config: { url: hook.url } })).id;
      // Always true for a live host: fires at once on the samples hub B forwards to the evaluator.
      const rule = await c.api('POST', '/api/v1/alerts/rules', { name: 'memory in use', metric: 'memory_used_percent', op: '>', threshold: 0, forSec: 0, severity: 'warning', scope: { hosts: [agentId] }, channels: [channel], groupWindowSec: 0.2 });
      const firing = await waitFor(() => hook.got.find((g) => g.body.rule?.id === rule.id && g.body.kind === 'firing'), 'the firing notification', 15_000);
      assert.equal(firing.body.firing[0].hostId, agentId);
      // Any hub answers with the evaluator's alerts.
      await waitFor(async () => (await b.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.some((x: any) => x.state === 'firing'), 'firing on hub B');

      let holder: TestHub | undefined;
      for (const h of [a, b, c]) if ((await health(h)).cluster.leases.includes('alerts')) holder = h;
      assert.ok(holder, 'one hub holds the alerts lease');
      assert.notEqual(holder, b, 'the agent’s hub is not the evaluator here (hub A started first and took it)');
      const t0 = performance.now();
      await holder.kill('SIGKILL');
      const survivors = [a, b, c].filter((h) => h !== holder);
      const next = await waitFor(async () => {
        for (const h of survivors) if ((await health(h).catch(() => undefined))?.cluster.leases.includes('alerts')) return h;
        return undefined;
      }, 'another hub takes the alerts lease', 12_000, 100);
      const moved = performance.now() - t0;
      assert.ok(moved < 10_000, `evaluator moved in ${Math.round(moved)} ms`);
      t.diagnostic(`evaluator moved ${Math.round(moved)} ms after SIGKILL`);
      // The new evaluator restores the firing alert as notified: a few evaluation rounds later, still one notice.
      await waitFor(async () => (await next.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.some((x: any) => x.state === 'firing'), 'firing on the new evaluator', 10_000);
      await roundsLater(next, 10);
      assert.equal(hook.got.filter((g) => g.body.rule?.id === rule.id && g.body.kind === 'firing').length, 1, 'one firing notification across the hand-over');
      // And a rule made after the hand-over notifies once, from the new evaluator.
      const rule2 = await next.api('POST', '/api/v1/alerts/rules', { name: 'memory in use, again', metric: 'memory_used_percent', op: '>', threshold: 0, forSec: 0, severity: 'info', scope: { hosts: [agentId] }, channels: [channel], groupWindowSec: 0.2 });
      await waitFor(() => hook.got.some((g) => g.body.rule?.id === rule2.id && g.body.kind === 'firing'), 'the second rule fires', 15_000);
      await roundsLater(next, 10);
      assert.equal(hook.got.filter((g) => g.body.rule?.id === rule2.id && g.body.kind === 'firing').length, 1);
      await next.api('DELETE', `/api/v1/alerts/rules/${rule.id}`);
      await next.api('DELETE', `/api/v1/alerts/rules/${rule2.id}`);
      // Bring the killed hub back into the cluster for the tests after this one.
      await holder.restart();
      await waitFor(async () => (await health(holder!)).cluster.hubs.length === 3, 'the restarted hub rejoins');
    } finally {
      hook.server.close();
    }
  });

  test('live metrics from agents on all three hubs reach one browser on hub A', async () => {
    const extra = await Promise.all([a, c].map(async (h) => TestAgent.start(h.url, { token: await a.enrollToken(), env: FAST })));
    const ws = new WebSocket(a.url.replace('http', 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${a.token}` } });
    const open = new Promise((res, rej) => ws.once('open', res).once('error', rej));
    try {
      const ids = [agentId, ...(await Promise.all(extra.map((x) => x.waitConnected())))];
      const seen = new Map<string, number[]>();
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === 'sample' && m.kind === 'usage') seen.set(m.hostId, [...(seen.get(m.hostId) ?? []), m.ts]);
      });
      await open;
      ws.send(JSON.stringify({ op: 'subscribe', hosts: '*' }));
      await waitFor(() => ids.every((id) => (seen.get(id)?.length ?? 0) >= 4), `usage samples of ${ids.length} hosts on three hubs`, 10_000);
      // Each sample once: one per report (its own timestamp), not one per hub that relayed it.
      for (const id of ids) {
        const ts = seen.get(id)!;
        assert.equal(new Set(ts).size, ts.length, `no sample of ${id} pushed twice: ${ts.join(', ')}`);
      }
    } finally {
      ws.close();
      for (const x of extra) {
        await x.stop();
        x.cleanup();
      }
    }
  });

  test('a terminal opened on hub A to an agent held by hub B works, and its recording is kept once', async () => {
    const term = TestAgent.start(b.url, { token: await a.enrollToken(), capabilities: ['metrics', 'terminal'], toml: TERMINAL_USER_TOML, env: FAST });
    try {
      const id = await term.waitConnected();
      await a.waitOnline(id, true, 5000);
      const ws = new WebSocket(`${a.url.replace('http', 'ws')}/api/v1/hosts/${id}/terminal?cols=80&rows=24`, { headers: { authorization: `Bearer ${a.token}` } });
      let text = '';
      let opened = false;
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; data?: string };
        if (m.type === 'output') text += m.data!;
        else if (m.type === 'opened') opened = true;
      });
      await waitFor(() => opened, 'the terminal opens through hub B', 10_000);
      ws.send(JSON.stringify({ type: 'input', data: 'echo cluster-$((6*7))\n' }));
      await waitFor(() => text.includes('cluster-42'), 'the command’s output', 10_000);
      ws.send(JSON.stringify({ type: 'input', data: 'exit\n' }));
      await new Promise((r) => ws.once('close', r));
      const sessions = await waitFor(async () => {
        const l = (await a.api('GET', `/api/v1/terminal/sessions?host=${id}`)).sessions;
        return l.length && l[0].endedAt && l;
      }, 'the session recorded as ended', 10_000);
      assert.equal(sessions.length, 1, 'one session row');
      const rec = await a.raw('GET', `/api/v1/terminal/sessions/${sessions[0].id}/recording`);
      assert.equal(rec.status, 200);
      assert.match(await rec.text(), /cluster-42/);
      // Only hub A, where the browser was, keeps the recording; hub B relayed without recording.
      const { existsSync } = await import('node:fs');
      const { join } = await import('node:path');
      assert.equal(existsSync(join(a.dataDir, 'recordings', `${sessions[0].id}.cast`)), true);
      assert.equal(existsSync(join(b.dataDir, 'recordings', `${sessions[0].id}.cast`)), false);
    } finally {
      await term.stop();
      term.cleanup();
    }
  });

  test('a command through hub A on an agent held by hub B, synchronously and streamed, wherever the scheduler runs', async () => {
    for (const via of [a, c]) {
      const r = await via.api('POST', '/api/v1/exec', { target: { hosts: [agentId] }, command: ['sh', '-c', 'echo ran-on-$(hostname)'], wait: 30 });
      assert.equal(r.job.state, 'succeeded');
      assert.match(r.tasks[0].stdout, /^ran-on-/);
    }
    // Streamed: output and the end reach a subscriber on a hub that neither holds the agent nor (maybe) schedules.
    const job = await c.api('POST', '/api/v1/exec', { target: { hosts: [agentId] }, command: ['sh', '-c', 'echo first; sleep 1; echo second'], mode: 'async' });
    const got: any[] = [];
    const ws = new WebSocket(c.url.replace('http', 'ws') + `/api/v1/jobs/${job.job.id}/stream`, { headers: { authorization: `Bearer ${c.token}` } });
    await new Promise<void>((res, rej) => {
      ws.on('message', (d) => got.push(JSON.parse(d.toString())));
      ws.on('close', () => res());
      ws.on('error', rej);
    });
    const end = got.find((m) => m.type === 'job' && m.job.state !== 'running');
    assert.equal(end?.job.state, 'succeeded');
    const final = got.filter((m) => m.type === 'task').at(-1);
    assert.equal(final.task.stdout, 'first\nsecond\n');
  });

  test('killing the job scheduler’s hub mid-job loses no result and runs nothing twice', async (t) => {
    const marks = `/tmp/tether-cluster-runs-${randomBytes(4).toString('hex')}`;
    const hubs = [a, b, c];
    const ids = await Promise.all(hubs.map(async (h) => (await health(h)).cluster.hubId));
    const holderIdx = (await Promise.all(hubs.map(health))).findIndex((x) => x.cluster.leases.includes('jobs'));
    assert.ok(holderIdx >= 0, 'one hub schedules jobs');
    const holder = hubs[holderIdx]!;
    // Two agents on the hubs that stay.
    const stay = hubs.filter((h) => h !== holder);
    const agents = await Promise.all(stay.map(async (h) => TestAgent.start(h.url, { token: await a.enrollToken(), capabilities: ['exec'], env: FAST })));
    try {
      const hostIds = await Promise.all(agents.map((x) => x.waitConnected()));
      for (const id of hostIds) await holder.waitOnline(id, true, 5000);
      const job = await stay[0]!.api('POST', '/api/v1/exec', { target: { hosts: hostIds }, command: ['sh', '-c', `echo $$ >> ${marks}; sleep 2; echo finished`], mode: 'async' });
      await waitFor(async () => (await stay[0]!.api('GET', `/api/v1/jobs/${job.job.id}`)).tasks.every((x: any) => x.state === 'running'), 'both tasks running', 10_000);
      const t0 = performance.now();
      await holder.kill('SIGKILL');
      const done = await waitFor(async () => {
        const j = await stay[1]!.api('GET', `/api/v1/jobs/${job.job.id}`);
        return j.job.state !== 'running' && j;
      }, 'the job ends under the next scheduler', 30_000, 200);
      t.diagnostic(`job ended ${Math.round(performance.now() - t0)} ms after the scheduler's hub was killed`);
      assert.equal(done.job.state, 'succeeded', JSON.stringify(done.tasks.map((x: any) => [x.state, x.status, x.error])));
      for (const task of done.tasks) assert.equal(task.stdout, 'finished\n');
      const { readFileSync } = await import('node:fs');
      assert.equal(readFileSync(marks, 'utf8').trim().split('\n').length, 2, 'each host ran it once');
      void ids;
    } finally {
      for (const x of agents) {
        await x.stop();
        x.cleanup();
      }
      const { rmSync } = await import('node:fs');
      rmSync(marks, { force: true });
      await holder.restart();
      await waitFor(async () => (await health(holder)).cluster.hubs.length === 3, 'the restarted hub rejoins');
    }
  });

  test('a hub drained for an upgrade moves its agents to the others and gives up its singletons', async () => {
    const moving = TestAgent.start(c.url, { token: await a.enrollToken(), env: FAST });
    try {
      const id = await moving.waitConnected();
      await a.waitOnline(id, true, 5000);
      const cId = (await health(c)).cluster.hubId;
      const r = await a.api('POST', `/api/v1/cluster/hubs/${cId}/drain`);
      assert.equal(r.hub, cId);
      assert.ok(r.moved >= 1);
      await moving.proc.waitForLine(new RegExp(`"hub":"(${a.url}|${b.url})","msg":"connected to hub"`), 5000);
      const hc = await health(c);
      assert.deepEqual(hc.cluster.leases, [], 'a draining hub runs no singleton');
      assert.equal((await c.api('GET', '/api/v1/cluster')).hubs[0].draining, true);
      await a.waitOnline(id, true, 5000);
      // The audit log names the hub drained.
      const audit = await a.api('GET', '/api/v1/audit?limit=20');
      assert.ok(audit.entries.some((e: any) => e.action?.includes('drain') || JSON.stringify(e).includes(cId)));
    } finally {
      await moving.stop();
      moving.cleanup();
      await c.restart();
      await waitFor(async () => (await health(c)).cluster.hubs.length === 3, 'the drained hub back after its restart');
    }
  });

  test('an agent whose hub is killed is connected to another hub within 5 s', async (t) => {
    const moving = TestAgent.start(c.url, { token: await a.enrollToken(), env: FAST });
    try {
      await moving.waitConnected();
      // It learns the other hubs after its welcome.
      await moving.proc.waitForLine(/learned the other hubs of the cluster/, 5000);
      const t0 = performance.now();
      await c.kill('SIGKILL');
      await moving.proc.waitForLine(new RegExp(`"hub":"(${a.url}|${b.url})","msg":"connected to hub"`), 5000);
      const took = performance.now() - t0;
      t.diagnostic(`agent reconnected to another hub ${Math.round(took)} ms after its hub was killed`);
      assert.ok(took < 5000);
    } finally {
      await moving.stop();
      moving.cleanup();
      await c.restart();
      await waitFor(async () => (await health(c)).cluster.hubs.length === 3, 'the killed hub back');
    }
  });

  test('a hub whose protocol differs from the live hubs’ is refused with the reason', async () => {
    await sql(shared.url, `insert into cluster_hubs (id, url, version, protocol, started_at, seen_at, agents, draining) values ('old-hub', 'http://old.example:8080', '0.0.1', 999, 0, (extract(epoch from clock_timestamp()) * 1000)::bigint, 0, 0)`);
    try {
      await assert.rejects(startHub(shared), /speaks protocol \d+ .*old-hub \(http:\/\/old\.example:8080, version 0\.0\.1, protocol 999\)/s);
    } finally {
      await sql(shared.url, `delete from cluster_hubs where id = 'old-hub'`);
    }
  });

  test('a hub with another sealing key is refused, naming the key the cluster uses', async () => {
    await assert.rejects(startHub({ ...shared, key: randomBytes(32).toString('hex') }), /needs the same key file/);
  });
});

/** A nats-server of the test's own on a free port, so that it can be stopped. */
async function privateNats(port?: number): Promise<{ url: string; port: number; proc: ChildProcess; stop(): Promise<void> }> {
  if (port === undefined) {
    const srv = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
  }
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => /Server is ready/.test(out), 'nats-server ready', 10_000);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    proc,
    async stop() {
      proc.kill('SIGKILL');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    },
  };
}

describe('a cluster whose NATS goes away and comes back', () => {
  test('hubs say "cluster degraded", keep serving their own agents, and converge when NATS returns', async () => {
    const db = pgSchema();
    let nats = await privateNats();
    // With a user and password in the URL (a server without authorization takes any): never shown.
    const shared = { url: db.url, key: randomBytes(32).toString('hex'), prefix: `t${randomBytes(5).toString('hex')}`, nats: nats.url.replace('nats://', 'nats://tether:n4ts-s3cret@') };
    const a = await startHub(shared);
    const b = await startHub(shared);
    const agent = TestAgent.start(b.url, { token: await a.enrollToken(), capabilities: ['metrics', 'process'], env: FAST });
    try {
      const id = await agent.waitConnected();
      await a.waitOnline(id, true, 5000);
      await nats.stop();
      const degraded = await waitFor(async () => {
        const x = await health(b);
        return x.status === 'degraded' && x;
      }, 'hub B degraded', 10_000);
      assert.match(degraded.reasons!.join('\n'), /cluster degraded: NATS unreachable/);
      // Its own agent still answers through it.
      const ps = await b.api('GET', `/api/v1/hosts/${id}/ps`);
      assert.ok(ps.total > 0);
      // Hub A keeps what it last knew rather than calling the fleet offline; a request says why it fails.
      assert.equal((await a.api('GET', `/api/v1/hosts/${id}`)).online, true);
      const r = await a.raw('GET', `/api/v1/hosts/${id}/ps`);
      assert.equal(r.status, 409);
      nats = await privateNats(nats.port);
      for (const h of [a, b]) await waitFor(async () => (await health(h)).status === 'ok', 'healthy again', 15_000);
      const again = await waitFor(async () => {
        const x = await a.raw('GET', `/api/v1/hosts/${id}/ps`);
        return x.status === 200 && x;
      }, 'requests through hub A again', 10_000);
      assert.equal(again.status, 200);
      const shown = JSON.stringify(await a.api('GET', '/api/v1/cluster'));
      assert.match(shown, /nats:\/\/\*\*\*@127\.0\.0\.1/);
      for (const text of [shown, a.proc.output(), b.proc.output()]) assert.doesNotMatch(text, /n4ts-s3cret/);
    } finally {
      await agent.stop();
      agent.cleanup();
      await a.cleanup();
      await b.cleanup();
      await nats.stop();
      await db.drop();
    }
  });
});
