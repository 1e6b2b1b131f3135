// Parsers on sample text in the kernel's formats, for the cases this machine does not show.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRoute4, parseRoute6, parseCpuinfo, parseOsRelease, parseResolvConf } from '../../src/collectors/static.js';
import { KEPT_SOCKETS, Slicer, parseInetTable, parseMountinfo, parsePidStat, readTableLines, readText } from '../../src/collectors/util.js';
import { parseUnixTable } from '../../src/collectors/connections.js';
import { fakeTree } from './helpers.js';

test('readText returns files larger than its buffer whole, in every mode', () => {
  const t = fakeTree();
  try {
    const line = `${'x'.repeat(149)}\n`;
    const big = line.repeat(13_000); // ~1.9 MB, like /proc/net/tcp with 13k TIME_WAIT sockets
    t.write('big', big);
    assert.equal(readText(`${t.root}/big`), big);
    assert.equal(readText(`${t.root}/big`, 'latin1', 'table'), big);
    assert.equal(readText(`${t.root}/big`, 'latin1', 'once'), big);
    assert.equal(readText(`${t.root}/missing`), undefined);
  } finally {
    t.cleanup();
  }
});

test('readText of the real /proc/net/tcp matches readFileSync line for line', () => {
  const a = readText('/proc/net/tcp', 'latin1', 'table')!.split('\n').length;
  const b = readFileSync('/proc/net/tcp', 'latin1').split('\n').length;
  assert.ok(Math.abs(a - b) <= 5, `${a} vs ${b} lines (sockets come and go between the reads)`);
});

test("readText 'once' reads the kernel's one-piece files whole: /proc/<pid>/stat, status, cmdline, /proc/stat, meminfo", () => {
  for (const f of ['self/stat', 'self/status', 'self/cmdline', 'stat', 'meminfo', 'loadavg']) {
    const once = readText(`/proc/${f}`, 'latin1', 'once')!;
    const whole = readFileSync(`/proc/${f}`, 'latin1');
    // values move between the two reads; the shape (lines and fields) does not
    assert.equal(once.split('\n').length, whole.split('\n').length, f);
    assert.equal(once.split(/\s+/).length, whole.split(/\s+/).length, f);
  }
});

test('inet tables: addresses, ports, states; TIME_WAIT only counted; IPv4-mapped IPv6', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31337 1 0000000000000000 100 0 0 10 0',
    '   1: 0200C0C0:C350 0900A8C0:01BB 01 00000000:00000000 02:000A7B2D 00000000     0        0 4242 2 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:D6D8 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000',
    '',
  ].join('\n');
  const t = parseInetTable(tcp, 'tcp');
  assert.equal(t.timeWait, 1);
  assert.deepEqual(t.listening, [
    { proto: 'tcp', localAddress: '127.0.0.1', localPort: 8080, remoteAddress: '0.0.0.0', remotePort: 0, stateCode: '0A', uid: 1000, inode: 31337 },
  ]);
  assert.deepEqual(t.others, [
    { proto: 'tcp', localAddress: '192.192.0.2', localPort: 50000, remoteAddress: '192.168.0.9', remotePort: 443, stateCode: '01', uid: 0, inode: 4242 },
  ]);
  assert.deepEqual([t.tcpStates[0x0a], t.tcpStates[0x01], t.tcpStates.reduce((a, b) => a + b)], [1, 1, 2]);
  // every socket but TIME_WAIT, compact: inode and kind (1 TCP, 2 listening)
  assert.equal(t.count, 2);
  assert.deepEqual([...t.inodes.subarray(0, 2)], [31337, 4242]);
  assert.deepEqual([...t.kinds.subarray(0, 2)], [3, 1]);
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5122 1 0000000000000000 100 0 0 10 0',
    '   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D6D8 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1',
    '   2: B80D0120000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  const s6 = parseInetTable(tcp6, 'tcp6');
  const show = (l: typeof s6.listening) => l.map((s) => `${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`);
  assert.deepEqual(show(s6.listening), ['::1:6379 :::0', '2001:db8::1:22 :::0']);
  assert.deepEqual(show(s6.others), ['::ffff:127.0.0.1:8080 ::ffff:127.0.0.1:55000']);
});

test('inet tables: UDP bound without a peer is listening, connected UDP is not; a malformed line is left out', () => {
  const udp = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 16000 2 0000000000000000 0',
    '  200: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000   101        0 16001 2 0000000000000000 0',
    '  300: garbage line',
    '  301: 0100007F:A001 0100007F:0035 01 00000000:00000000',
  ].join('\n');
  const t = parseInetTable(udp, 'udp');
  assert.equal(t.udp, 2);
  assert.deepEqual(t.listening.map((s) => [s.localPort, s.inode]), [[68, 16000]]);
  assert.deepEqual(t.others.map((s) => [s.remotePort, s.uid, s.inode]), [[53, 101, 16001]]);
  assert.equal(t.count, 2);
});

test('inet tables: a busy host keeps KEPT_SOCKETS whole and only the inode and kind of the rest', () => {
  const line = (i: number, st: string) =>
    `${String(i).padStart(6)}: 0100007F:${(1024 + (i % 60000)).toString(16).toUpperCase().padStart(4, '0')} 0100007F:1F90 ${st} 00000000:00000000 00:00000000 00000000     0        0 ${100000 + i} 1 0000000000000000 20 4 30 10 -1`;
  const lines = ['  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'];
  for (let i = 0; i < KEPT_SOCKETS + 1000; i++) lines.push(line(i, '01'));
  for (let i = 0; i < 3000; i++) lines.push(line(i, '06'));
  const t = parseInetTable(lines.join('\n'), 'tcp');
  assert.equal(t.others.length, KEPT_SOCKETS);
  assert.equal(t.dropped, 1000);
  assert.equal(t.count, KEPT_SOCKETS + 1000);
  assert.equal(t.timeWait, 3000);
  assert.equal(t.tcpStates[1], KEPT_SOCKETS + 1000);
  assert.equal(t.inodes[KEPT_SOCKETS + 999], 100000 + KEPT_SOCKETS + 999);
  assert.equal(t.others[KEPT_SOCKETS - 1]!.inode, 100000 + KEPT_SOCKETS - 1);
});

test('readTableLines hands over every line once, whole, header left out, across buffer boundaries', async () => {
  const t = fakeTree();
  try {
    // lines of varying length, 300 KB in all: many 64 KiB buffers, lines cut at every boundary
    const want = Array.from({ length: 4000 }, (_, i) => `${i}:${'y'.repeat(i % 97)}`);
    const file = join(t.root, 'table');
    writeFileSync(file, ['header line', ...want].join('\n') + '\n');
    const got: string[] = [];
    const slicer = new Slicer(0);
    assert.equal(await readTableLines(file, (text) => got.push(...text.split('\n').filter(Boolean)), slicer), true);
    assert.deepEqual(got, want);
    assert.ok(slicer.yields > 0, 'a slice of 0 ms yields between buffers');
    assert.equal(await readTableLines(join(t.root, 'missing'), () => {}), false);
  } finally {
    t.cleanup();
  }
});

test('/proc/net/unix: every socket counted, listening ones kept with their path, type and inode', () => {
  const u = parseUnixTable(
    [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 20561 /run/systemd/private',
      '0000000000000000: 00000002 00000000 00000000 0002 01 20562',
      '0000000000000000: 00000002 00000000 00010000 0005 01 20563 @abstract name with spaces',
      '0000000000000000: 00000003 00000000 00000000 0001 03 20564 /run/dbus/system_bus_socket',
    ].join('\n'),
  );
  assert.equal(u.count, 4);
  assert.deepEqual(u.listening, [
    { path: '/run/systemd/private', type: 'stream', inode: 20561 },
    { path: '@abstract name with spaces', type: 'seqpacket', inode: 20563 },
  ]);
});

test('/proc/<pid>/stat with spaces and parentheses in the command name', () => {
  const st = parsePidStat('77 (a) b) (c) R 1 77 77 0 -1 4194304 10 0 0 0 123 45 0 0 20 0 4 0 9999 2000000 321 18446744073709551615\n');
  assert.deepEqual(st, { name: 'a) b) (c', state: 'R', ppid: 1, utime: 123, stime: 45, threads: 4, startTicks: 9999, vsize: 2000000, rssPages: 321 });
  assert.equal(parsePidStat('garbage'), undefined);
});

test('mountinfo: escaped spaces, over-mounts, options from both halves', () => {
  const m = parseMountinfo([
    '36 25 8:1 / /mnt/my\\040disk rw,noatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
    '37 25 8:2 / /data rw - xfs /dev/sda2 rw',
    '38 37 8:3 / /data ro - ext4 /dev/sda3 ro',
  ].join('\n'));
  assert.deepEqual(m.map((x) => [x.mount, x.majorMinor, x.fsType, x.source]), [
    ['/mnt/my disk', '8:1', 'ext4', '/dev/sda1'],
    ['/data', '8:3', 'ext4', '/dev/sda3'],
  ]);
  assert.deepEqual(m[0]?.options, ['rw', 'noatime', 'errors=remount-ro']);
});

test('routes: default IPv4 gateway by lowest metric, IPv6 default via next hop', () => {
  const route = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
  ].join('\n');
  assert.deepEqual(parseRoute4(route), { address: '192.0.2.1', interface: 'eth0' });
  const r6 = '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n';
  assert.deepEqual(parseRoute6(r6), { address: 'fe80::1', interface: 'eth0' });
  assert.equal(parseRoute4(route.split('\n').slice(0, 1).join('\n')), undefined);
});

test('cpuinfo: sockets and physical cores from physical id / core id; ARM without model name', () => {
  const block = (p: number, phys: number, core: number) => `processor\t: ${p}\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon X\ncpu MHz\t\t: ${2000 + p}\nphysical id\t: ${phys}\ncore id\t\t: ${core}\n`;
  // 2 sockets × 2 cores × 2 threads
  const text = [0, 1, 2, 3, 4, 5, 6, 7].map((p) => block(p, p >> 2, (p >> 1) & 1)).join('\n');
  assert.deepEqual(parseCpuinfo(text), { model: 'Xeon X', vendor: 'GenuineIntel', sockets: 2, physicalCores: 4, logicalCpus: 8, mhz: 2004 });
  const arm = 'processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n';
  const a = parseCpuinfo(arm);
  assert.equal(a.logicalCpus, 2);
  assert.equal(a.physicalCores, 2);
  assert.ok(a.model.length > 0);
});

test('os-release quoting and resolv.conf comments, search and domain', () => {
  assert.deepEqual(parseOsRelease('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME=\'Ubuntu 24.04 LTS\'\n# c\n'), {
    platform: process.platform, id: 'ubuntu', name: 'Ubuntu', version: '', versionId: '24.04', prettyName: 'Ubuntu 24.04 LTS',
  });
  assert.deepEqual(parseResolvConf('# generated\nnameserver 1.1.1.1\nnameserver 2606:4700::1111 # v6\nsearch a.example b.example\noptions edns0\n'), {
    nameservers: ['1.1.1.1', '2606:4700::1111'], searchDomains: ['a.example', 'b.example'],
  });
});
