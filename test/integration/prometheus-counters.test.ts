/**
 * GET /metrics with a real agent reporting: besides the per-second rates, the network and disk
 * counters the agent reads from /proc, under node_exporter's names, as counters that only grow (so
 * rate() over any range counts every byte), and the CPU count; promtool accepts the exposition.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import os from 'node:os';
import { TestAgent, TestHub, testDatabases, waitFor } from '@tether/testkit';

const sample = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  for (const l of text.split('\n')) {
    if (!l.startsWith(name + '{')) continue;
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) return Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return undefined;
};

/** The loopback's received bytes as the kernel counts them now. */
const loRx = () => Number(/^\s*lo:\s*(\d+)/m.exec(readFileSync('/proc/net/dev', 'utf8'))![1]);

/** Sends n bytes through the loopback (a server on 127.0.0.1 that swallows them). */
async function loopbackTraffic(n: number): Promise<void> {
  const srv = createServer((s) => s.resume());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => c.end(Buffer.alloc(n), () => r()));
  await new Promise((r) => c.once('close', r));
  srv.close();
}

for (const db of testDatabases()) {
  describe(`/metrics counters (${db})`, () => {
    let hub: TestHub;
    let agent: TestAgent;
    let id: string;
    const scrape = async () => {
      const r = await hub.raw('GET', '/metrics');
      assert.equal(r.status, 200);
      return r.text();
    };
    before(async () => {
      hub = await TestHub.start({ db });
      agent = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { env: 'ci' } }), capabilities: ['metrics'], toml: 'collector_intervals = { usage = "1s" }' });
      id = await agent.waitConnected();
    });
    after(async () => {
      await agent?.stop();
      agent?.cleanup();
      await hub?.cleanup();
    });

    test('network bytes through the loopback show in node_network_receive_bytes_total{device="lo"}, a counter that only grows', async () => {
      const first = await waitFor(async () => sample(await scrape(), 'node_network_receive_bytes_total', { host_id: id, device: 'lo', env: 'ci' }), 'lo counter', 15_000, 200);
      assert.ok(first <= loRx(), `${first} is a reading of /proc/net/dev (now ${loRx()})`);
      await loopbackTraffic(4 << 20);
      const later = await waitFor(async () => {
        const v = sample(await scrape(), 'node_network_receive_bytes_total', { host_id: id, device: 'lo' });
        return v !== undefined && v >= first + (4 << 20) && v;
      }, 'the 4 MiB counted', 15_000, 200);
      assert.ok(later <= loRx());
      const text = await scrape();
      for (const name of ['node_network_receive_bytes_total', 'node_network_transmit_bytes_total', 'node_network_receive_packets_total', 'node_network_transmit_packets_total', 'node_network_receive_errs_total', 'node_network_transmit_errs_total', 'node_network_receive_drop_total', 'node_network_transmit_drop_total']) {
        assert.ok(text.includes(`# TYPE ${name} counter\n`), `${name} is typed counter`);
        assert.notEqual(sample(text, name, { host_id: id, device: 'lo' }), undefined, name);
      }
      assert.ok(sample(text, 'node_network_transmit_packets_total', { host_id: id, device: 'lo' })! > 0);
      // The rates are still there beside them.
      assert.notEqual(sample(text, 'tether_net_rx_bytes_per_second', { host_id: id, interface: 'lo' }), undefined);
    });

    test('disk counters for each device under a mount the agent reports, the CPU count, and promtool accepts it all', async () => {
      const latest = await hub.api('GET', `/api/v1/hosts/${id}/latest`);
      const devices = new Set<string>((latest.usage.filesystems as { io?: { device: string } }[]).filter((f) => f.io).map((f) => f.io!.device));
      const text = await scrape();
      for (const device of devices) {
        for (const name of ['node_disk_read_bytes_total', 'node_disk_written_bytes_total', 'node_disk_reads_completed_total', 'node_disk_writes_completed_total']) {
          assert.ok(text.includes(`# TYPE ${name} counter\n`), name);
          const lines = text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes(`host_id="${id}"`) && l.includes(`device="${device}"`));
          assert.equal(lines.length, 1, `${name} once for ${device} however many mounts sit on it`);
        }
      }
      const fs = (latest.usage.filesystems as { io?: { device: string; writeBytesTotal: number } }[]).find((f) => f.io);
      if (fs) assert.ok(sample(text, 'node_disk_written_bytes_total', { host_id: id, device: fs.io!.device })! >= fs.io!.writeBytesTotal);
      assert.equal(sample(text, 'tether_cpus', { host_id: id }), os.cpus().length);
      assert.ok(text.includes('# TYPE tether_cpus gauge\n'));
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      if (check.error) assert.fail(`promtool is needed (Debian package prometheus; npm test installs it): ${check.error.message}`);
      assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`.slice(0, 2000));
    });
  });
}
