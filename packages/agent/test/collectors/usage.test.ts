// The usage collector against independent readings of the same sources, taken between two of ours.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { usageCollector } from '../../src/collectors/usage.js';
import type { HostUsage } from '../../src/collectors/types.js';
import { between, sh } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };
const MiB = 1024 * 1024;

async function read(): Promise<HostUsage> {
  const u = await usageCollector(roots).collect(Date.now());
  assert.ok(u);
  return u;
}

test('memory total and available agree with `free -b`', async () => {
  const a = await read();
  const mem = sh('free', ['-b']).split('\n').find((l) => l.startsWith('Mem:'))!.split(/\s+/).map(Number);
  const b = await read();
  // free -b: Mem: total used free shared buff/cache available
  assert.equal(a.memory.totalBytes, mem[1]);
  assert.ok(between(mem[6]!, a.memory.availableBytes, b.memory.availableBytes, 16 * MiB), `free ${mem[6]} vs ${a.memory.availableBytes}..${b.memory.availableBytes}`);
  assert.ok(between(mem[3]!, a.memory.freeBytes, b.memory.freeBytes, 16 * MiB));
  assert.equal(a.memory.usedBytes, a.memory.totalBytes - a.memory.availableBytes, 'used is defined as total − available');
});

test('size and used of / agree with `df -B1`', async () => {
  const a = await read();
  const [size, used, avail] = sh('df', ['-B1', '--output=size,used,avail', '/']).trim().split('\n')[1]!.trim().split(/\s+/).map(Number);
  const b = await read();
  const ra = a.filesystems.find((f) => f.mount === '/');
  const rb = b.filesystems.find((f) => f.mount === '/');
  assert.ok(ra && rb, 'the root filesystem is reported');
  assert.equal(ra.sizeBytes, size);
  assert.ok(between(used!, ra.usedBytes, rb.usedBytes, 16 * MiB), `df used ${used} vs ${ra.usedBytes}..${rb.usedBytes}`);
  assert.ok(between(avail!, ra.availableBytes, rb.availableBytes, 16 * MiB));
  assert.ok(ra.inodesTotal > 0 && ra.inodesUsed > 0);
  assert.ok(ra.io, 'disk I/O of the root device is mapped through major:minor');
});

test('load averages agree with /proc/loadavg read by cat', async () => {
  const a = await read();
  const [one, five, fifteen] = sh('cat', ['/proc/loadavg']).split(' ').map(Number);
  const b = await read();
  assert.ok(between(one!, a.load.one, b.load.one) && between(five!, a.load.five, b.load.five) && between(fifteen!, a.load.fifteen, b.load.fifteen));
});

test('CPU percentages come from the second reading on, one per logical CPU (`nproc`), summing to 100', async () => {
  const c = usageCollector(roots);
  const first = await c.collect(Date.now());
  assert.equal(first?.cpu, undefined, 'no percentages from a single reading');
  await new Promise((r) => setTimeout(r, 250));
  const second = await c.collect(Date.now());
  assert.ok(second?.cpu);
  assert.equal(second.cpu.perCore.length, Number(sh('nproc', ['--all']).trim()));
  const t = second.cpu.total;
  const sum = t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal;
  assert.ok(Math.abs(sum - 100) < 0.1, `sum ${sum}`);
  assert.ok(Math.abs(t.busy - (100 - t.idle - t.iowait)) < 0.05);
});

test('interfaces are those of `ip -o link`, and loopback traffic we make shows as a rate', async () => {
  const linkNames = () => sh('ip', ['-o', 'link']).trim().split('\n').map((l) => l.split(': ')[1]!.split('@')[0]!).sort();
  const c = usageCollector(roots);
  await c.collect(Date.now());
  // put ~1 MB through lo
  const net = await import('node:net');
  await new Promise<void>((resolve) => {
    const srv = net.createServer((s) => s.resume().on('end', () => { s.end(); srv.close(); resolve(); }));
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const cli = net.connect(port, '127.0.0.1', () => cli.end(Buffer.alloc(1024 * 1024)));
      cli.resume();
    });
  });
  await new Promise((r) => setTimeout(r, 100));
  const u = await c.collect(Date.now());
  assert.ok(u);
  const lo = u.interfaces.find((i) => i.name === 'lo')!;
  assert.ok((lo.rxBytesPerSec ?? 0) > 1_000_000 * 0.5, `lo rx rate ${lo.rxBytesPerSec}`);
  assert.ok(lo.rxBytesTotal >= 1024 * 1024);
  // other work on this machine adds and removes interfaces: ip is read just before and after ours
  for (let attempt = 1; ; attempt++) {
    const before = linkNames();
    const v = await c.collect(Date.now());
    const after = linkNames();
    if (JSON.stringify(before) === JSON.stringify(after) || attempt === 10) {
      assert.deepEqual(v?.interfaces.map((i) => i.name).sort(), after);
      break;
    }
  }
});
