/**
 * Host metrics end to end: a real agent's collectors → the link → ingestion → API, live stream
 * and Prometheus, against SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { TestAgent, TestHub, tempDir, testDatabases, waitFor } from '@tether/testkit';

const FAST = { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=2s,connections=2s,sensors=2s,gpu=5s,self=2s' };

for (const db of testDatabases()) {
  describe(`metrics end to end on ${db}`, () => {
    let hub: TestHub;
    let agent: TestAgent;
    let id: string;
    let server: Server;
    let port = 0;
    before(async () => {
      hub = await TestHub.start({ db, heartbeat: '1s' });
      agent = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { env: 'test', 'team/owner': 'ops' } }), env: FAST });
      id = await agent.waitConnected();
      server = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      port = (server.address() as { port: number }).port;
    });
    after(async () => {
      server.close();
      await agent.stop();
      agent.cleanup();
      await hub.cleanup();
    });

    test('every collector reports, and the figures agree with independent readings', async () => {
      const latest = await waitFor(async () => {
        const r = await hub.raw('GET', `/api/v1/hosts/${id}/latest`);
        if (r.status !== 200) return undefined;
        const l = (await r.json()) as any;
        return l.usage && l.processes && l.connections && l.sensors && l.gpu && l.self ? l : undefined;
      }, 'a report from every collector', 15_000);
      const inv = await hub.api('GET', `/api/v1/hosts/${id}/inventory`);

      const free = execFileSync('free', ['-b'], { encoding: 'utf8' }).split('\n')[1]!.split(/\s+/);
      assert.equal(latest.usage.memory.totalBytes, Number(free[1]), 'memory total = free -b');
      assert.equal(inv.data.cpu.logicalCpus, Number(execFileSync('nproc', ['--all'], { encoding: 'utf8' }).trim()), 'logical CPUs = nproc --all');
      assert.equal(latest.usage.cpu?.perCore.length ?? cpus().length, cpus().length);
      const df = execFileSync('df', ['-B1', '--output=size', '/'], { encoding: 'utf8' }).trim().split('\n')[1]!.trim();
      const rootFs = latest.usage.filesystems.find((f: { mount: string }) => f.mount === '/');
      assert.equal(rootFs.sizeBytes, Number(df), 'root size = df -B1');
      assert.ok(latest.processes.processes.some((p: { pid: number }) => p.pid === agent.proc.pid), 'the agent sees itself');
      assert.ok(latest.self.rssBytes > 10e6);

      // A socket this test opened shows up as listening, owned by this process.
      const conn = await waitFor(async () => {
        const c = await hub.api('GET', `/api/v1/hosts/${id}/connections`);
        return c.listening.find((s: { localPort: number }) => s.localPort === port) ? c : undefined;
      }, 'our listening port in a connections report', 10_000);
      const mine = conn.listening.find((s: { localPort: number }) => s.localPort === port);
      assert.equal(mine.pid, process.pid);
      const ss = execFileSync('ss', ['-tlnH'], { encoding: 'utf8' });
      assert.ok(ss.includes(`:${port} `), 'ss agrees the port is listening');
    });

    test('history: raw points arrive for a label selector, unknown metrics are refused, storage is estimated', async () => {
      const q = await waitFor(async () => {
        const r = await hub.api('GET', `/api/v1/metrics/query?selector=${encodeURIComponent('env=test')}&metrics=cpu_percent|busy,memory_bytes|used,load1&from=-5m`);
        return r.series.length === 3 && r.series.every((s: { points: unknown[] }) => s.points.length >= 2) ? r : undefined;
      }, 'three series with points');
      assert.equal(q.tier, 'raw');
      const mem = q.series.find((s: { key: string }) => s.key === 'memory_bytes|used');
      assert.equal(mem.hostId, id);
      for (const p of mem.points) assert.ok(p[1] > 0 && p[1] === p[2] && p[2] === p[3]);
      const bad = await hub.raw('GET', `/api/v1/metrics/query?host=${id}&metrics=cpu_temperature_of_mars`);
      assert.equal(bad.status, 400);
      assert.equal((await hub.raw('GET', `/api/v1/metrics/query?host=${id}&metrics=load1&from=-1h&to=-2h`)).status, 400);
      const ov = await hub.api('GET', '/api/v1/metrics/overview');
      const me = ov.hosts.find((h: { id: string }) => h.id === id);
      assert.ok(me.online && me.memoryPercent > 0 && me.diskPercent > 0);
      // os and uptime are read from the stored facts by the database's JSON functions
      const host = await hub.api('GET', `/api/v1/hosts/${id}`);
      assert.equal(me.os, host.facts.os.pretty);
      assert.ok(host.facts.bootTime > 0);
      assert.ok(Math.abs(me.uptimeSec - (Date.now() - host.facts.bootTime) / 1000) < 60, `uptime ${me.uptimeSec} s`);
      const st = await hub.api('GET', `/api/v1/metrics/storage?host=${id}`);
      assert.ok(st.hosts[0].bytesPerDay.raw > 0 && st.hosts[0].series > 20);
    });

    test('GET /metrics needs a login and passes promtool check metrics', async () => {
      assert.equal((await hub.raw('GET', '/metrics', undefined, false)).status, 401);
      const text = await waitFor(async () => {
        const t = await (await hub.raw('GET', '/metrics')).text();
        return t.includes('tether_memory_bytes{') && t.includes('tether_processes{') && t.includes('tether_agent_sent_bytes{') ? t : undefined;
      }, 'fleet series in /metrics');
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
      assert.match(text, new RegExp(`tether_host_up\\{host="[^"]+",host_id="${id}"\\} 1`));
      assert.match(text, /tether_cpu_ratio\{[^}]*mode="busy"[^}]*env="test"[^}]*team_owner="ops"\} [0-9.e-]+/);
      assert.match(text, /tether_hub_ingest_latency_seconds\{quantile="0.99"\} /);
      // The agent's own figures (its self collector), with its version and runtime.
      assert.match(text, new RegExp(`tether_agent_info\\{host="[^"]+",host_id="${id}",version="\\d+\\.\\d+\\.\\d+[^"]*",runtime="node \\d+\\.\\d+\\.\\d+ (x64|arm64)"[^}]*\\} 1`));
      for (const family of ['tether_agent_rss_bytes', 'tether_agent_heap_used_bytes', 'tether_agent_gc_pause_seconds', 'tether_agent_gc_pause_max_seconds', 'tether_agent_backlog_reports', 'tether_agent_received_bytes', 'tether_agent_sent_bytes'])
        assert.match(text, new RegExp(`^${family}\\{host="[^"]+",host_id="${id}"[^}]*\\} [0-9.e+-]+$`, 'm'), family);
      assert.ok(Number(/^tether_agent_received_bytes\{[^}]*\} (\d+)$/m.exec(text)![1]) > 0, 'bytes in counted');
    });

    test('the live stream pushes samples for subscribed hosts and status changes', async () => {
      const ws = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${hub.token}` } });
      const got: { type: string; hostId?: string; kind?: string; series?: Record<string, number> }[] = [];
      ws.on('message', (d) => got.push(JSON.parse(d.toString())));
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ op: 'subscribe', hosts: [id], kinds: ['usage'] }));
      const s = await waitFor(() => got.find((m) => m.type === 'sample' && m.hostId === id), 'a pushed sample', 5000);
      assert.equal(s.kind, 'usage');
      assert.ok(typeof s.series!['load1'] === 'number');
      assert.ok(!got.some((m) => m.type === 'sample' && m.kind !== 'usage'), 'only the subscribed kind');
      ws.send('not json');
      await waitFor(() => got.find((m) => m.type === 'error'), 'an error for a bad message');
      ws.close();
      const anon = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/live');
      const code = await new Promise<number>((r) => anon.on('unexpected-response', (_q, res) => r(res.statusCode!)));
      assert.equal(code, 401, 'no login, no stream');
      const evil = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${hub.token}`, origin: 'http://evil.example' } });
      const closed = await new Promise<number>((r) => evil.on('close', (c) => r(c)));
      assert.equal(closed, 4403, 'a foreign origin is refused');
    });

    test('a 60 s partition leaves no gap in the history', { timeout: 180_000 }, async () => {
      const t0 = Date.now();
      process.kill(hub.proc.pid, 'SIGSTOP');
      try {
        await new Promise((r) => setTimeout(r, 60_000));
      } finally {
        process.kill(hub.proc.pid, 'SIGCONT');
      }
      const tEnd = Date.now();
      await waitFor(() => agent.proc.lines.some((l) => l.includes('sent usage samples buffered while disconnected')), 'the backlog sent', 30_000);
      const q = await waitFor(async () => {
        const r = await hub.api('GET', `/api/v1/metrics/query?host=${id}&metrics=load1&from=${t0 - 5000}&to=${tEnd}&tier=raw`);
        const pts = r.series[0]?.points ?? [];
        return pts.length > 60 ? pts : undefined;
      }, 'samples for the partition window', 20_000);
      const ts = (q as [number][]).map((p) => p[0]);
      let worst = 0;
      for (let i = 1; i < ts.length; i++) worst = Math.max(worst, ts[i]! - ts[i - 1]!);
      assert.ok(worst <= 2500, `largest gap ${worst} ms with samples every 1 s`);
      assert.ok(ts[0]! <= t0 && ts[ts.length - 1]! >= tEnd - 2000, 'the window is covered end to end');
      // The 1-minute tier has every minute of the window too (late minutes recomputed from raw).
      const startMin = Math.floor(t0 / 60_000) * 60_000;
      const endMin = Math.floor(tEnd / 60_000) * 60_000;
      await waitFor(async () => {
        const r = await hub.api('GET', `/api/v1/metrics/query?host=${id}&metrics=load1&from=${startMin}&to=${endMin}&tier=1m`);
        const minutes = new Set((r.series[0]?.points ?? []).map((p: number[]) => p[0]));
        for (let m = startMin; m < endMin; m += 60_000) if (!minutes.has(m)) return false;
        return true;
      }, 'every minute of the partition in the 1-minute tier', 30_000);
    });
  });
}

test('an agent without the metrics capability reports nothing', async () => {
  const hub = await TestHub.start();
  const dir = tempDir();
  writeFileSync(join(dir, 'agent.toml'), 'capabilities = []\n');
  const a = TestAgent.start(hub.url, { token: await hub.enrollToken(), extraArgs: ['--config', join(dir, 'agent.toml')], env: FAST });
  // A control agent with the capability, started at the same time: once it has sent several
  // reports, the locked one would have too.
  const control = TestAgent.start(hub.url, { token: await hub.enrollToken(), env: FAST });
  try {
    const id = await a.waitConnected();
    const cid = await control.waitConnected();
    await waitFor(async () => {
      const r = await hub.raw('GET', `/api/v1/hosts/${cid}/latest`);
      return r.status === 200 && ((await r.json()) as { processes?: unknown }).processes !== undefined;
    }, 'the control agent reporting');
    assert.equal((await hub.raw('GET', `/api/v1/hosts/${id}/latest`)).status, 404);
    assert.deepEqual((await hub.api('GET', `/api/v1/hosts/${id}`)).capabilities, []);
  } finally {
    await a.stop();
    await control.stop();
    a.cleanup();
    control.cleanup();
    await hub.cleanup();
  }
});
