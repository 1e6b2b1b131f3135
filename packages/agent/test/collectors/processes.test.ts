// The processes collector against the real /proc: a busy child shows its CPU, figures agree with
// `ps`, and this test process's own listening socket and connection are attributed to it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { test } from 'node:test';
import { processesCollector } from '../../src/collectors/processes.js';
import { between, sh } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };

test('a busy loop in a child process shows its CPU % as the kernel counts it, and its figures agree with ps', async (t) => {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  const c = processesCollector(roots, { topN: 5 });
  const ticks = () => {
    const st = readFileSync(`/proc/${child.pid}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const t0 = Date.now();
  const k0 = ticks();
  await c.collect(t0);
  await new Promise((r) => setTimeout(r, 1500));
  const t1 = Date.now();
  const k1 = ticks();
  const r = await c.collect(t1);
  // What the kernel says the child used over the same interval (10 ms ticks): the machine may be
  // busy, so the busy loop gets what it gets; the collector must agree with the kernel.
  const independent = ((k1 - k0) * 10 * 100) / (t1 - t0);
  const [ppid, user, rssKb] = sh('ps', ['-o', 'ppid=,user=,rss=', '-p', String(child.pid)]).trim().split(/\s+/);
  assert.ok(r);
  const p = r.processes.find((x) => x.pid === child.pid);
  assert.ok(p, 'the busy child is among the top processes');
  assert.ok(Math.abs((p.cpuPercent ?? 0) - independent) < 10, `cpu ${p.cpuPercent} vs /proc ${independent}`);
  assert.ok((p.cpuPercent ?? 0) > 5, `cpu ${p.cpuPercent}`);
  const cpus = r.processes.map((x) => x.cpuPercent ?? 0);
  assert.deepEqual(cpus, [...cpus].sort((x, y) => y - x), 'sorted by CPU first');
  assert.equal(p.ppid, Number(ppid));
  assert.equal(p.ppid, process.pid);
  assert.equal(p.user, user);
  assert.equal(p.user, userInfo().username);
  assert.equal(p.state, 'R');
  assert.ok(p.command.includes('for (;;) {}'));
  // RSS of a JS loop is stable; allow for the gap between the two readings
  assert.ok(Math.abs(p.rssBytes - Number(rssKb) * 1024) < 8 * 1024 * 1024, `rss ${p.rssBytes} vs ps ${rssKb} kB`);
  assert.ok(r.totals.processes >= r.processes.length && r.truncated === r.totals.processes > r.processes.length);
  assert.ok(r.processes.length <= 10, 'top 5 by CPU and top 5 by memory at most');
});

test('the process count agrees with the pids `ps -e` lists', async () => {
  const a = await processesCollector(roots).collect(Date.now());
  const n = sh('ps', ['-e', '-o', 'pid=']).trim().split('\n').length - 1; // ps itself
  const b = await processesCollector(roots).collect(Date.now());
  assert.ok(a && b);
  assert.ok(between(n, a.totals.processes, b.totals.processes, 2), `ps ${n} vs ${a.totals.processes}..${b.totals.processes}`);
});

test('this process is found with its listening port and its open connection', async (t) => {
  const srv = createServer((s) => s.resume());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const cli = connect(port, '127.0.0.1');
  await new Promise((r) => cli.on('connect', r));
  t.after(() => { cli.destroy(); srv.close(); });
  // a large topN so this test does not depend on where the runner ranks
  const r = await processesCollector(roots, { topN: 1000 }).collect(Date.now());
  const me = r?.processes.find((p) => p.pid === process.pid);
  assert.ok(me);
  assert.ok(me.listenPorts.includes(port), `ports ${me.listenPorts}`);
  assert.ok(me.connections >= 2, 'both ends of the loopback connection are ours');
  assert.ok(between(me.rssBytes, process.memoryUsage().rss, process.memoryUsage().rss, 16 * 1024 * 1024));
});
