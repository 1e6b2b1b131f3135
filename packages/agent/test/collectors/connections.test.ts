// The connections collector against `ss`: the same listening TCP ports, and our own sockets found
// with our pid.
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { join } from 'node:path';
import { connectionsCollector } from '../../src/collectors/connections.js';
import { InetTables, SocketOwners, scanSocketOwners } from '../../src/collectors/util.js';
import type { ConnectionsSummary } from '../../src/collectors/types.js';
import { fakeTree, sh } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };
const tcpListenPorts = (c: ConnectionsSummary) => new Set(c.listening.filter((s) => s.proto.startsWith('tcp')).map((s) => `${s.localAddress}:${s.localPort}`));

test('listening TCP sockets are those `ss -tlnp` lists, ours with our pid', async (t) => {
  const srv = createServer((s) => s.resume());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const dir = fakeTree();
  const unixPath = join(dir.root, 'agent.sock');
  const usrv = createServer(() => {});
  await new Promise<void>((r) => usrv.listen(unixPath, r));
  const cli = connect(port, '127.0.0.1');
  await new Promise((r) => cli.on('connect', r));
  t.after(() => { cli.destroy(); srv.close(); usrv.close(); dir.cleanup(); });

  const c = connectionsCollector(roots);
  const a = await c.collect(Date.now());
  const ss = sh('ss', ['-tlnpH']);
  const b = await c.collect(Date.now());
  assert.ok(a && b);

  // ss prints 127.0.0.1:4222, [::1]:6379, and * for a dual-stack IPv6 wildcard
  const ssSet = new Set(ss.trim().split('\n').map((l) => {
    const local = l.trim().split(/\s+/)[3]!;
    const i = local.lastIndexOf(':');
    const addr = local.slice(0, i).replace(/^\[(.*)\]$/, '$1').replace(/^\*$/, '::');
    return `${addr}:${local.slice(i + 1)}`;
  }));
  const [sa, sb] = [tcpListenPorts(a), tcpListenPorts(b)];
  // what was listening at both of our readings was listening when ss looked, and what ss saw, we saw
  for (const x of sa) if (sb.has(x)) assert.ok(ssSet.has(x), `${x} found by the collector but not by ss`);
  for (const x of ssSet) assert.ok(sa.has(x) || sb.has(x), `${x} in ss but not found by the collector`);
  assert.ok(ssSet.has(`127.0.0.1:${port}`));

  const mine = b.listening.find((s) => s.localPort === port && s.localAddress === '127.0.0.1');
  assert.ok(mine, 'our listening socket is found');
  assert.equal(mine.state, 'LISTEN');
  assert.equal(mine.pid, process.pid);
  assert.equal(mine.process, 'node');
  const ssLine = ss.split('\n').find((l) => l.includes(`127.0.0.1:${port} `));
  assert.match(ssLine ?? '', new RegExp(`pid=${process.pid},`), 'ss agrees on the pid');

  const est = b.connections.find((s) => s.remotePort === port && s.state === 'ESTABLISHED');
  assert.ok(est, 'our client connection is found');
  assert.equal(est.pid, process.pid);
  assert.ok((b.counts.tcp['LISTEN'] ?? 0) >= 1 && (b.counts.tcp['ESTABLISHED'] ?? 0) >= 2);

  const u = b.unixListening.find((s) => s.path === unixPath);
  assert.ok(u, 'our unix listening socket is found');
  assert.equal(u.pid, process.pid);
  assert.equal(u.type, 'stream');
});

test('a socket opened after the owner map was built is still attributed', async (t) => {
  const c = connectionsCollector(roots);
  await c.collect(Date.now());
  const srv = createServer(() => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const r = await c.collect(Date.now());
  assert.equal(r?.listening.find((s) => s.localPort === port)?.pid, process.pid);
});

test('lists are bounded and say so', async (t) => {
  const srvs = await Promise.all([0, 1, 2].map(() => new Promise<ReturnType<typeof createServer>>((r) => {
    const s = createServer(() => {});
    s.listen(0, '127.0.0.1', () => r(s));
  })));
  t.after(() => srvs.forEach((s) => s.close()));
  const r = await connectionsCollector(roots, { maxListening: 2 }).collect(Date.now());
  assert.equal(r?.listening.length, 2);
  assert.equal(r?.truncated, true);
});

test('a busy host’s collection gives the event loop turns, with the same result as in one piece', async (t) => {
  const srv = createServer(() => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const mine = (r: ConnectionsSummary | undefined) => r?.listening.find((s) => s.localPort === port);
  // a slice of 0 ms: a turn after every buffer of the tables and every 64 fd links
  const sliced = connectionsCollector(roots, {}, new SocketOwners('/proc', 60_000, { sliceMs: 0 }), new InetTables('/proc', 0), 0);
  let turned = false;
  setImmediate(() => (turned = true));
  const a = await sliced.collect(Date.now());
  assert.ok(turned, 'an immediate queued before the collection ran before it ended');
  // in one piece: nothing else runs until it is done
  const whole = connectionsCollector(roots, {}, new SocketOwners('/proc', 60_000, { sliceMs: 1e9 }), new InetTables('/proc', 1e9), 1e9);
  turned = false;
  setImmediate(() => (turned = true));
  const b = await whole.collect(Date.now());
  assert.equal(turned, false);
  assert.equal(mine(a)?.pid, process.pid);
  assert.equal(mine(b)?.pid, process.pid);
  assert.equal(a?.truncated, false);
});

test('an owner scan that runs out of its readlink budget says so; counts and lists still come from the whole tables', async (t) => {
  const srv = createServer(() => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const scan = await scanSocketOwners('/proc', [process.pid], { maxReadlinks: 3 });
  assert.equal(scan.truncated, true);
  assert.equal(scan.readlinks, 3);
  const all = await scanSocketOwners('/proc', [process.pid]);
  assert.equal(all.truncated, false);
  assert.ok(all.map.size > 0 && [...all.map.values()].every((p) => p === process.pid));

  const owners = new SocketOwners('/proc', 60_000, { maxReadlinks: 3 });
  const r = await connectionsCollector(roots, {}, owners).collect(Date.now());
  assert.equal(r?.truncated, true, 'the report says the owners are incomplete');
  // counted from the tables, not the owners: ours is among them
  assert.ok((r?.counts.tcp['LISTEN'] ?? 0) >= 1);
  assert.ok(r?.listening.some((s) => s.localPort === (srv.address() as AddressInfo).port));
});
