// The static collector against hostname, uname, nproc, lscpu, lsblk, df, ip and resolv.conf.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readStatic, staticCollector } from '../../src/collectors/static.js';
import { parseUtmp, UTMP_RECORD_SIZE } from '../../src/collectors/util.js';
import { fakeTree, sh } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };
const s = readStatic(roots, Date.now());

test('identity, kernel, CPU and memory agree with hostname, uname, nproc, lscpu and free', () => {
  assert.equal(s.hostname, sh('hostname', []).trim());
  assert.equal(s.kernel, sh('uname', ['-r']).trim());
  assert.equal({ x64: 'x86_64', arm64: 'aarch64' }[s.arch] ?? s.arch, sh('uname', ['-m']).trim());
  assert.equal(s.cpu.logicalCpus, Number(sh('nproc', ['--all']).trim()));
  const lscpu = Object.fromEntries(sh('lscpu', []).split('\n').map((l) => l.split(/:\s+/) as [string, string]));
  assert.equal(s.cpu.model, lscpu['Model name']);
  assert.equal(s.cpu.sockets, Number(lscpu['Socket(s)']));
  assert.equal(s.cpu.physicalCores, Number(lscpu['Socket(s)']) * Number(lscpu['Core(s) per socket']));
  assert.ok(s.cpu.mhz > 0);
  assert.equal(s.memory.totalBytes, Number(sh('free', ['-b']).split('\n')[1]!.split(/\s+/)[1]));
  const uptime = Number(sh('cat', ['/proc/uptime']).split(' ')[0]);
  assert.ok(Math.abs(s.uptimeSec - uptime) < 5);
  assert.ok(Math.abs(s.bootTime + s.uptimeSec * 1000 - Date.now()) < 5000, 'boot time + uptime = now');
});

test('OS comes from /etc/os-release', () => {
  const rel = sh('cat', ['/etc/os-release']);
  assert.equal(s.os.id, /^ID=(.*)$/m.exec(rel)?.[1]);
  assert.equal(s.os.prettyName, /^PRETTY_NAME="(.*)"$/m.exec(rel)?.[1]);
  assert.equal(s.os.platform, 'linux');
});

test('block devices and filesystems agree with lsblk and df; pseudo filesystems are left out', () => {
  const lsblk = new Map(sh('lsblk', ['-b', '-d', '-n', '-o', 'NAME,SIZE']).trim().split('\n').map((l) => l.trim().split(/\s+/) as [string, string]));
  assert.ok(s.blockDevices.length > 0);
  for (const d of s.blockDevices) assert.equal(d.sizeBytes, Number(lsblk.get(d.name)), d.name);
  const root = s.filesystems.find((f) => f.mount === '/');
  assert.ok(root);
  const [fstype, size, itotal] = sh('df', ['-B1', '--output=fstype,size,itotal', '/']).trim().split('\n')[1]!.trim().split(/\s+/);
  assert.equal(root.fsType, fstype);
  assert.equal(root.sizeBytes, Number(size));
  assert.equal(root.inodesTotal, Number(itotal));
  assert.match(root.majorMinor, /^\d+:\d+$/);
  assert.ok(root.options.includes('rw') || root.options.includes('ro'));
  for (const f of s.filesystems) {
    assert.ok(!/^\/(proc|sys|dev)(\/|$)/.test(f.mount), f.mount);
    assert.ok(!['proc', 'sysfs', 'devpts', 'cgroup', 'cgroup2', 'devtmpfs'].includes(f.fsType), f.fsType);
  }
});

test('interfaces agree with `ip -o link` and `ip -o addr`', () => {
  // Other work on this machine creates and removes interfaces (containers, veth pairs): compare a
  // reading of ip taken between two of ours that agree with each other.
  for (let attempt = 1; ; attempt++) {
    const before = readStatic(roots, Date.now()).interfaces;
    const linkText = sh('ip', ['-o', 'link']);
    const addrText = sh('ip', ['-o', 'addr']);
    const after = readStatic(roots, Date.now()).interfaces;
    if (JSON.stringify(before) !== JSON.stringify(after) && attempt < 10) continue;
    const links = linkText.trim().split('\n').map((l) => {
      const m = /^(\d+): ([^:@]+)[^:]*: <([^>]*)> mtu (\d+).* link\/\S+ ([0-9a-f:]+)/.exec(l)!;
      return { index: Number(m[1]), name: m[2]!, flags: m[3]!.split(','), mtu: Number(m[4]), mac: m[5]! };
    });
    assert.deepEqual(after.map((i) => i.name).sort(), links.map((l) => l.name).sort());
    for (const l of links) {
      const i = after.find((x) => x.name === l.name)!;
      assert.equal(i.index, l.index);
      assert.equal(i.mtu, l.mtu);
      assert.equal(i.mac, l.mac);
      for (const f of ['UP', 'LOOPBACK', 'BROADCAST', 'MULTICAST', 'NOARP']) assert.equal(i.flags.includes(f), l.flags.includes(f), `${l.name} ${f}`);
    }
    const addrs = addrText.trim().split('\n').map((l) => {
      const f = l.split(/\s+/);
      return `${f[1]} ${f[3]}`;
    });
    const ours = after.flatMap((i) => i.addresses.map((a) => `${i.name} ${a.address}/${a.prefixLength}`));
    assert.deepEqual(ours.sort(), addrs.sort());
    return;
  }
});

test('default gateways agree with `ip route`, nameservers with /etc/resolv.conf', () => {
  const v4 = /default via (\S+) dev (\S+)/.exec(sh('ip', ['route', 'show', 'default']));
  if (v4) assert.deepEqual(s.gateways.ipv4, { address: v4[1], interface: v4[2] });
  else assert.equal(s.gateways.ipv4, undefined);
  const v6 = /default via (\S+) dev (\S+)/.exec(sh('ip', ['-6', 'route', 'show', 'default']));
  if (v6) assert.deepEqual(s.gateways.ipv6, { address: v6[1], interface: v6[2] });
  else assert.equal(s.gateways.ipv6, undefined);
  const ns = [...sh('cat', ['/etc/resolv.conf']).matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(s.nameservers, ns);
});

test('logged-in users: no utmp file means none; utmp records are parsed', () => {
  assert.deepEqual(readStatic({ ...roots, utmpPath: '/nonexistent/utmp' }, Date.now()).users, []);
  // two records: a boot record (type 2, skipped) and alice on pts/0 from 203.0.113.9
  const buf = Buffer.alloc(UTMP_RECORD_SIZE * 2);
  buf.writeInt16LE(2, 0);
  const o = UTMP_RECORD_SIZE;
  buf.writeInt16LE(7, o);
  buf.writeInt32LE(4321, o + 4);
  buf.write('pts/0', o + 8);
  buf.write('alice', o + 44);
  buf.write('203.0.113.9', o + 76);
  buf.writeInt32LE(1_790_000_000, o + 340);
  buf.writeInt32LE(500_000, o + 344);
  assert.deepEqual(parseUtmp(buf), [{ type: 7, pid: 4321, line: 'pts/0', user: 'alice', host: '203.0.113.9', loginTime: 1_790_000_000_500 }]);
  const t = fakeTree();
  try {
    t.write('utmp', buf);
    assert.deepEqual(readStatic({ ...roots, utmpPath: `${t.root}/utmp` }, Date.now()).users, [
      { user: 'alice', tty: 'pts/0', host: '203.0.113.9', pid: 4321, loginTime: 1_790_000_000_500 },
    ]);
  } finally {
    t.cleanup();
  }
});

test('reported on the first check, then only on change or once the daily period passes', async () => {
  const t = fakeTree();
  try {
    const c = staticCollector({ ...roots, utmpPath: `${t.root}/utmp` }, 3_600_000);
    const now = Date.now();
    assert.ok(await c.collect(now));
    assert.equal(await c.collect(now + 60_000), undefined, 'nothing but the clock changed');
    const buf = Buffer.alloc(UTMP_RECORD_SIZE);
    buf.writeInt16LE(7, 0);
    buf.write('bob', 44);
    t.write('utmp', buf);
    assert.deepEqual((await c.collect(now + 120_000))?.users.map((u) => u.user), ['bob'], 'a login is a change');
    assert.equal(await c.collect(now + 180_000), undefined);
    assert.ok(await c.collect(now + 120_000 + 3_600_000), 'the period passed');
  } finally {
    t.cleanup();
  }
});
