/**
 * Soak: a hub lives through days. The hub runs on a TestClock moved forward steadily so that the run
 * covers SOAK_DAYS simulated days (default 3) in SOAK_MINUTES real minutes (default 60): every hour
 * boundary (compaction), day boundary and raw-retention cut (24 h) of those days passes under load.
 * A second process holds SOAK_AGENTS simulated agents (default 200; real protocol, real signatures)
 * that report every 5 s of real time, stamped with the hub's time, and probes the hub as a user
 * would: a login and a hosts list every 2 s. Every real minute it records the p50/p99/max of login,
 * hosts list and ingest (report → ack), errors, health, the hub's RSS and event-loop delay.
 *
 * The run fails (exit 1) on any stall: a request or acknowledgement slower than 5 s, a request that
 * failed, health not 200, a failed scheduled task or metrics write.
 *
 * Usage: npm run build && node bench/dist/soak.js [sqlite|postgres]
 *        SOAK_MINUTES=60 SOAK_DAYS=3 SOAK_AGENTS=200
 * Results: bench/results/soak.json (every minute) and a summary appended to bench/results/soak.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createHub, loadHubConfig, TestClock, type Hub } from '@tether/hub';
import { encodeFrame, newMessageId } from '@tether/protocol';
import { simFacts, pgSchema, newSimIdentity, simConnect, simUsage, tempDir, type RawAgent } from '@tether/testkit';
import { machine, percentile, pool, record, rssMiB } from './lib/util.js';

const STALL_MS = 5000;
const PASSWORD = 'soak-admin-password';

interface Lat {
  n: number;
  p50: number;
  p99: number;
  max: number;
}
interface Minute {
  minute: number;
  simTime: string;
  login: Lat;
  hosts: Lat;
  ingest: Lat;
  errors: string[];
  health: { ok: number; notOk: number; worst?: string };
  hubRssMiB: number;
  loopMaxDelayMs: number;
  metricsTickMs: number | undefined;
  hoursCompacted: number;
}

function lat(v: number[]): Lat {
  const s = [...v].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN) };
}

// ------------------------------------------------------------------ the load (child process)

async function load(): Promise<void> {
  const { url, token, agents } = JSON.parse(process.env.SOAK_LOAD!) as { url: string; token: string; agents: number };
  let offset = 0;
  process.on('message', (m: { offset?: number; stop?: boolean }) => {
    if (m.offset !== undefined) offset = m.offset;
    if (m.stop) process.exit(0);
  });
  const hubNow = () => Date.now() + offset;
  const sims: RawAgent[] = [];
  await pool(
    Array.from({ length: agents }, (_, i) => i),
    32,
    async (i) => {
      const a = await simConnect(url, newSimIdentity(), { token, facts: simFacts(`soak-${i}`) });
      a.keep = false;
      sims[i] = a;
    },
  );
  let cur = { login: [] as number[], hosts: [] as number[], ingest: [] as number[], errors: [] as string[], healthOk: 0, healthNotOk: 0, worstHealth: '' };
  const pending = new Map<string, number>();
  for (const a of sims) {
    a.onMessage = (m) => {
      if (m.type !== 'ack' || !m.re) return;
      const t = pending.get(m.re);
      if (t === undefined) return;
      pending.delete(m.re);
      cur.ingest.push(performance.now() - t);
    };
  }
  // Each agent every 5 s, spread over the interval; the value is the agent's number, so history is checkable by eye.
  sims.forEach((a, i) => {
    setTimeout(() => {
      const send = () => {
        const id = newMessageId();
        pending.set(id, performance.now());
        a.sendRaw(encodeFrame('report.usage', simUsage(hubNow(), i), { id }));
      };
      send();
      setInterval(send, 5000);
    }, (i / agents) * 5000);
  });
  const timed = async (what: 'login' | 'hosts', fn: () => Promise<Response>): Promise<string | undefined> => {
    const t = performance.now();
    try {
      const r = await fn();
      const text = await r.text();
      cur[what].push(performance.now() - t);
      if (!r.ok) {
        cur.errors.push(`${what}: HTTP ${r.status} ${text.slice(0, 100)}`);
        return undefined;
      }
      return text;
    } catch (err) {
      cur.errors.push(`${what}: ${(err as Error).message} after ${Math.round(performance.now() - t)} ms`);
      return undefined;
    }
  };
  let session = '';
  const probe = async () => {
    const body = await timed('login', () => fetch(url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }), signal: AbortSignal.timeout(30_000) }));
    if (body) session = (JSON.parse(body) as { token?: string }).token ?? session;
    if (session) await timed('hosts', () => fetch(url + '/api/v1/hosts?limit=50', { headers: { authorization: `Bearer ${session}` }, signal: AbortSignal.timeout(30_000) }));
    try {
      const h = await fetch(url + '/api/v1/health', { signal: AbortSignal.timeout(30_000) });
      if (h.status === 200) cur.healthOk++;
      else {
        cur.healthNotOk++;
        cur.worstHealth = JSON.stringify(((await h.json()) as { reasons?: string[] }).reasons ?? h.status);
      }
    } catch (err) {
      cur.healthNotOk++;
      cur.worstHealth = (err as Error).message;
    }
  };
  const loop = async () => {
    for (;;) {
      const t = performance.now();
      await probe();
      await new Promise((r) => setTimeout(r, Math.max(0, 2000 - (performance.now() - t))));
    }
  };
  void loop();
  setInterval(() => {
    // An acknowledgement still missing after the stall bound is a stall too.
    const now = performance.now();
    for (const [id, t] of pending) {
      if (now - t > STALL_MS) {
        cur.errors.push(`ingest: no ack after ${Math.round(now - t)} ms`);
        pending.delete(id);
      }
    }
    if (!process.connected) return;
    process.send!({ minute: { login: lat(cur.login), hosts: lat(cur.hosts), ingest: lat(cur.ingest), errors: cur.errors.slice(0, 50), health: { ok: cur.healthOk, notOk: cur.healthNotOk, ...(cur.worstHealth ? { worst: cur.worstHealth } : {}) } } });
    cur = { login: [], hosts: [], ingest: [], errors: [], healthOk: 0, healthNotOk: 0, worstHealth: '' };
  }, 60_000);
  process.send!({ ready: true });
}

// ------------------------------------------------------------------ the hub and its clock (this process)

async function main(): Promise<void> {
  const db = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
  const minutes = Number(process.env.SOAK_MINUTES ?? 60);
  const days = Number(process.env.SOAK_DAYS ?? 3);
  const agents = Number(process.env.SOAK_AGENTS ?? 200);
  const speed = (days * 86400) / (minutes * 60); // simulated seconds per real second
  const dir = tempDir('tether-soak-');
  const pgs = db === 'postgres' ? pgSchema() : undefined;
  const dbUrl = pgs?.url ?? `sqlite:${dir}/tether.db`;
  // Start a little before midnight UTC, so the first day boundary comes early.
  const start = Math.floor(Date.now() / 86400_000) * 86400_000 + 86400_000 - 10 * 60_000;
  const clock = new TestClock(start);
  const hub: Hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir, db: dbUrl }, { TETHER_ADMIN_PASSWORD: PASSWORD, TETHER_LOG_LEVEL: 'warn' }), { clock, log: pino({ level: 'warn' }) });
  const token = (await hub.enroll.create({ name: 'soak', labels: {}, expiresInSec: 365 * 86400, singleUse: false, createdBy: 'bench', now: clock.now() })).token;
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['load'], { env: { ...process.env, SOAK_LOAD: JSON.stringify({ url: hub.url, token, agents }) } });
  const minutesOut: Minute[] = [];
  let lastCompacted = 0;
  const ready = new Promise<void>((res) => child.on('message', (m: { ready?: boolean }) => m.ready && res()));
  child.on('message', (m: { minute?: Omit<Minute, 'minute' | 'simTime' | 'hubRssMiB' | 'loopMaxDelayMs' | 'metricsTickMs' | 'hoursCompacted'> }) => {
    if (!m.minute) return;
    void hub.app.inject({ method: 'GET', url: '/api/v1/health' }).then((h) => {
      const j = h.json() as { eventLoop: { maxDelayMs: number }; tasks: { name: string; lastDurationMs?: number; failures: number }[] };
      const metricsTask = j.tasks.find((t) => t.name === 'metrics');
      const failures = j.tasks.filter((t) => t.failures > 0).map((t) => `task ${t.name} failed ${t.failures}×`);
      const rec: Minute = {
        minute: minutesOut.length + 1,
        simTime: new Date(clock.now()).toISOString().slice(0, 16),
        ...m.minute!,
        errors: [...m.minute!.errors, ...failures, ...(hub.metrics.counters.writeErrors ? [`${hub.metrics.counters.writeErrors} metrics write errors`] : [])],
        hubRssMiB: rssMiB(process.pid),
        loopMaxDelayMs: j.eventLoop.maxDelayMs,
        metricsTickMs: metricsTask?.lastDurationMs,
        hoursCompacted: hub.metrics.counters.hoursCompacted - lastCompacted,
      };
      lastCompacted = hub.metrics.counters.hoursCompacted;
      minutesOut.push(rec);
      const worst = Math.max(rec.login.max, rec.hosts.max, rec.ingest.max);
      process.stdout.write(
        `min ${String(rec.minute).padStart(3)} sim ${rec.simTime}  login p99 ${rec.login.p99} ms  hosts p99 ${rec.hosts.p99} ms  ingest p99 ${rec.ingest.p99} ms (n ${rec.ingest.n})  worst ${Math.round(worst)} ms  rss ${rec.hubRssMiB} MiB  loop ${rec.loopMaxDelayMs} ms  compacted ${rec.hoursCompacted}${rec.errors.length ? `  ERRORS ${rec.errors.length}: ${rec.errors[0]}` : ''}\n`,
      );
    });
  });
  await ready;
  const t0 = performance.now();
  // The clock: real time passes as usual; each second the hub's time also jumps (speed - 1) s.
  const mover = setInterval(() => {
    clock.advance((speed - 1) * 1000);
    if (child.connected) child.send({ offset: clock.now() - Date.now() });
  }, 1000);
  child.on('exit', (code) => {
    if (code) {
      console.error(`the load process exited with ${code}`);
      process.exit(1);
    }
  });
  child.send({ offset: clock.now() - Date.now() });
  await new Promise((r) => setTimeout(r, minutes * 60_000 + 5000));
  clearInterval(mover);
  const realMin = (performance.now() - t0) / 60_000;
  const simDays = (clock.now() - start) / 86400_000;
  child.send({ stop: true });
  await new Promise((r) => child.once('exit', r));

  // What the days left behind: every tier has rows; nothing was dropped or failed.
  const hostsList = await hub.hosts.list({});
  const one = hostsList[0]!;
  const end = clock.now();
  const h1 = (await hub.metrics.store.read1h(one.id, start, end, (k) => k === 'load1')).get('load1') ?? [];
  const m1 = (await hub.metrics.store.read1m(one.id, end - 86400_000, end, ['load1'])).get('load1') ?? [];
  const stop = await hub.stop();
  rmSync(dir, { recursive: true, force: true });
  await pgs?.drop();

  const stalls = minutesOut.flatMap((m) => [
    ...m.errors.map((e) => `min ${m.minute}: ${e}`),
    ...(['login', 'hosts', 'ingest'] as const).filter((k) => m[k].max > STALL_MS).map((k) => `min ${m.minute}: ${k} took ${m[k].max} ms`),
    ...(m.health.notOk ? [`min ${m.minute}: health not ok ${m.health.notOk}× (${m.health.worst})`] : []),
  ]);
  const all = (k: 'login' | 'hosts' | 'ingest') => ({ worstP99: Math.max(...minutesOut.map((m) => m[k].p99)), worstMax: Math.max(...minutesOut.map((m) => m[k].max)), medianP99: percentile(minutesOut.map((m) => m[k].p99).sort((a, b) => a - b), 50) });
  const summary = {
    when: new Date().toISOString(),
    machine: machine(),
    db,
    agents,
    realMinutes: Math.round(realMin * 10) / 10,
    simulatedDays: Math.round(simDays * 100) / 100,
    speed,
    login: all('login'),
    hosts: all('hosts'),
    ingest: all('ingest'),
    hubRssMiB: { first: minutesOut[0]?.hubRssMiB, last: minutesOut[minutesOut.length - 1]?.hubRssMiB, max: Math.max(...minutesOut.map((m) => m.hubRssMiB)) },
    loopMaxDelayMs: Math.max(...minutesOut.map((m) => m.loopMaxDelayMs)),
    hoursCompacted: hub.metrics.counters.hoursCompacted,
    history: { hoursInOneHost1h: h1.length, minutesInOneHostLastDay: m1.length },
    cleanStop: stop.clean,
    stalls,
  };
  const md = [
    `## ${summary.when.slice(0, 10)}: ${db}, ${agents} agents, ${summary.realMinutes} real minutes = ${summary.simulatedDays} simulated days (${machine()})`,
    '',
    '| per-minute p99 (ms) | median | worst | worst single request |',
    '|---|---|---|---|',
    ...(['login', 'hosts', 'ingest'] as const).map((k) => `| ${k === 'ingest' ? 'ingest (report → ack)' : k === 'hosts' ? 'hosts list' : 'login'} | ${summary[k].medianP99} | ${summary[k].worstP99} | ${summary[k].worstMax} |`),
    '',
    `Hub RSS ${summary.hubRssMiB.first} → ${summary.hubRssMiB.last} MiB (max ${summary.hubRssMiB.max}); longest event-loop delay ${summary.loopMaxDelayMs} ms; ${summary.hoursCompacted} host-hours compacted; one host's history: ${h1.length} hourly rows, ${m1.length} minutes in its last simulated day; stopped cleanly: ${stop.clean}.`,
    '',
    stalls.length ? `**FAILED: ${stalls.length} stalls**, first: ${stalls.slice(0, 5).join('; ')}` : `No stall over ${STALL_MS / 1000} s, no failed request, health 200 throughout.`,
    '',
  ].join('\n');
  record(`soak-${db}`, md, { summary, minutes: minutesOut });
  process.stdout.write(md + '\n');
  process.exit(stalls.length ? 1 : 0);
}

if (process.argv[2] === 'load') void load();
else
  void main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
