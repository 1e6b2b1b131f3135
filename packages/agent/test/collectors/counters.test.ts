// Parser tests on a fake /proc fed successive synthetic readings: a counter that goes backwards
// (32-bit wrap, driver reload, interface re-created, pid reused) yields no rate for that interval
// rather than a spike, and the next interval is normal again.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { processesCollector } from '../../src/collectors/processes.js';
import { usageCollector } from '../../src/collectors/usage.js';
import { counterRate } from '../../src/collectors/util.js';
import { fakeTree } from './helpers.js';

const t = fakeTree();
after(() => t.cleanup());
const roots = { procRoot: t.root, sysRoot: t.root, etcRoot: t.root, utmpPath: `${t.root}/utmp` };

function netDev(rx: number, tx: number): string {
  return [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    `  eth0: ${rx} ${rx / 100} 0 0 0 0 0 0 ${tx} ${tx / 100} 0 0 0 0 0 0`,
  ].join('\n') + '\n';
}
const stat = (user: number, idle: number) => `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user} 0 0 ${idle} 0 0 0 0 0 0\nbtime 1700000000\n`;
const diskstats = (sectorsRead: number, reads: number) => `   8       0 sda ${reads} 0 ${sectorsRead} 10 0 0 0 0 0 20 30 0 0 0 0\n`;

function writeReading(rx: number, tx: number, user: number, idle: number, sectors: number, reads: number): void {
  t.write('net/dev', netDev(rx, tx));
  t.write('stat', stat(user, idle));
  t.write('diskstats', diskstats(sectors, reads));
}

t.write('loadavg', '0.10 0.20 0.30 1/100 1234\n');
t.write('meminfo', 'MemTotal: 1000 kB\nMemFree: 400 kB\nMemAvailable: 600 kB\nBuffers: 10 kB\nCached: 100 kB\nSlab: 20 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n');
// one real filesystem (the fake tree itself, so statfs works) on device 8:0
t.write('self/mountinfo', `27 1 8:0 / ${t.root} rw,relatime - ext4 /dev/sda rw\n`);

test('counterRate: a counter that went backwards gives no rate', () => {
  assert.equal(counterRate(100, 300, 2), 100);
  assert.equal(counterRate(4_294_967_000, 200, 1), undefined, '32-bit wrap');
  assert.equal(counterRate(undefined, 5, 1), undefined, 'first reading');
  assert.equal(counterRate(5, 5, 0), undefined, 'no time elapsed');
});

test('usage: network, disk and CPU counters that reset give no spike, then rates resume', async () => {
  const c = usageCollector(roots);
  const t0 = 1_800_000_000_000;
  writeReading(1_000_000, 500_000, 1000, 9000, 2000, 100);
  const r0 = await c.collect(t0);
  assert.equal(r0?.interfaces[0]?.rxBytesPerSec, undefined, 'no rate from one reading');

  writeReading(1_100_000, 600_000, 1100, 9100, 4000, 110); // +100 kB rx over 10 s
  const r1 = await c.collect(t0 + 10_000);
  assert.equal(r1?.interfaces[0]?.rxBytesPerSec, 10_000);
  assert.equal(r1?.filesystems[0]?.io?.readBytesPerSec, (2000 * 512) / 10);
  assert.equal(r1?.cpu?.total.user, 50);

  // reset: interface re-created, disk driver reloaded, CPU counters restarted
  writeReading(5_000, 700_000, 10, 90, 100, 1);
  const r2 = await c.collect(t0 + 20_000);
  const eth = r2?.interfaces[0];
  assert.equal(eth?.rxBytesPerSec, undefined, 'rx went backwards: no rate');
  assert.equal(eth?.txBytesPerSec, 10_000, 'tx kept counting: its rate stands');
  assert.equal(eth?.rxBytesTotal, 5_000, 'totals are still reported');
  const io = r2?.filesystems[0]?.io;
  assert.equal(io?.readBytesPerSec, undefined);
  assert.equal(io?.readIops, undefined);
  assert.equal(r2?.cpu, undefined, 'CPU counters went backwards: no percentages this interval');

  writeReading(25_000, 800_000, 60, 140, 300, 3);
  const r3 = await c.collect(t0 + 30_000);
  assert.equal(r3?.interfaces[0]?.rxBytesPerSec, 2_000, 'rates resume from the new baseline');
  assert.equal(r3?.filesystems[0]?.io?.readBytesPerSec, (200 * 512) / 10);
  assert.equal(r3?.cpu?.total.user, 50);
});

test('processes: a reused pid (new start time) or a reset CPU counter gives no CPU %, not a spike', async () => {
  const pstat = (utime: number, start: number) =>
    `4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 ${utime} 0 0 0 20 0 3 0 ${start} 1000000 25 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;
  t.write('self/stat', pstat(0, 1)); // page size detection: 25 pages ...
  t.write('self/status', 'Name:\tx\nUid:\t0\t0\t0\t0\nVmRSS:\t100 kB\n'); // ... = 100 kB → 4096-byte pages
  t.write('passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  t.write('4242/status', 'Name:\tx\nUid:\t0\t0\t0\t0\nVmRSS:\t100 kB\nVmSwap:\t8 kB\n');
  t.write('4242/cmdline', 'my\0prog\0');
  const c = processesCollector(roots, { sockets: false });
  const t0 = 1_800_000_000_000;
  t.write('4242/stat', pstat(100, 500));
  await c.collect(t0);
  t.write('4242/stat', pstat(150, 500)); // 50 ticks in 1 s = 50 %
  const r1 = await c.collect(t0 + 1000);
  const p1 = r1?.processes.find((p) => p.pid === 4242);
  assert.equal(p1?.cpuPercent, 50);
  assert.equal(p1?.name, 'my (odd) name');
  assert.equal(p1?.command, 'my prog');
  assert.equal(p1?.rssBytes, 25 * 4096);
  assert.equal(p1?.swapBytes, 8 * 1024);
  assert.equal(p1?.user, 'root');

  t.write('4242/stat', pstat(5, 900)); // the pid now belongs to a new process
  const r2 = await c.collect(t0 + 2000);
  assert.equal(r2?.processes.find((p) => p.pid === 4242)?.cpuPercent, undefined);

  t.write('4242/stat', pstat(1, 900)); // same process, counter went backwards
  const r3 = await c.collect(t0 + 3000);
  assert.equal(r3?.processes.find((p) => p.pid === 4242)?.cpuPercent, undefined);

  t.write('4242/stat', pstat(21, 900));
  const r4 = await c.collect(t0 + 4000);
  assert.equal(r4?.processes.find((p) => p.pid === 4242)?.cpuPercent, 20);
});
