/**
 * The /metrics renderer on a fleet large enough to cross its chunk boundaries: the exposition is
 * the same text a one-piece render would be (each family once, every sample line), it comes in
 * many chunks, and the event loop runs between them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { renderPrometheus } from '../src/modules/metrics/prometheus.js';
import type { MetricsService } from '../src/modules/metrics/service.js';
import type { AgentLink } from '../src/modules/agents/link.js';
import type { Host } from '../src/modules/hosts/store.js';

const HOSTS = 6000; // over the 5,000 lines a chunk carries, in each family
const SERIES: Record<string, number> = { 'cpu_percent|busy': 12.5, 'cpu_percent|user': 10, 'memory_used_percent': 40, 'fs_used_bytes|/var/lib "x"': 1e9, load1: 0.5, not_a_family: 1 };

const values = (series: Record<string, number>) => ({ ts: 1, keys: Object.keys(series), values: Float64Array.from(Object.values(series)) });

function fleet(): { hosts: Host[]; metrics: MetricsService; link: AgentLink } {
  const hosts = Array.from({ length: HOSTS }, (_, i) => ({ id: `h-${i}`, hostname: `host-${i}`, labels: { env: i % 2 ? 'prod' : 'dev', 'team.name': 'a\\b' } }) as unknown as Host);
  const latest = new Map(hosts.map((h, i) => [h.id, { ts: 1, kinds: { usage: values(i === 7 ? {} : { ...SERIES, load1: i === 3 ? Number.NaN : 0.5 }) } }]));
  const metrics = { latest, ingestLatency: { quantile: () => 0, count: 0, sumMs: 0 }, counters: { reports: 0, lateSamples: 0, tooOld: 0, writeErrors: 0 } } as unknown as MetricsService;
  const link = { isOnline: (id: string) => id !== 'h-1', stats: { refused: {}, handshakesOk: 0 }, onlineCount: HOSTS - 1 } as unknown as AgentLink;
  return { hosts, metrics, link };
}

test('a large fleet renders in many chunks, with the event loop free between them, to a valid exposition', async () => {
  const { hosts, metrics, link } = fleet();
  const chunks: string[] = [];
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 0);
  try {
    for await (const c of renderPrometheus(hosts, metrics, link, { liveClients: 0 })) chunks.push(c);
  } finally {
    clearInterval(ticker);
  }
  assert.ok(chunks.length >= 9, `${chunks.length} chunks: families over 5,000 lines come in several`);
  assert.ok(ticks > 5, `the event loop ran timers ${ticks} times while rendering`);
  const text = chunks.join('');
  const lines = text.trimEnd().split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  // every host but the one without a report, for every known family; NaN and unknown families left out
  assert.equal(count(/^tether_cpu_ratio\{/), 2 * (HOSTS - 1));
  assert.equal(count(/^tether_memory_used_ratio\{/), HOSTS - 1);
  assert.equal(count(/^tether_load1\{/), HOSTS - 2);
  assert.equal(count(/^tether_fs_used_bytes\{/), HOSTS - 1);
  assert.equal(count(/not_a_family/), 0);
  assert.equal(count(/^tether_host_up\{/), HOSTS);
  assert.equal(count(/^# TYPE tether_cpu_ratio gauge$/), 1, 'each family once');
  assert.ok(lines.includes('tether_cpu_ratio{host="host-2",host_id="h-2",mode="busy",env="dev",team_name="a\\\\b"} 0.125'), 'labels escaped and sanitised; percent as a ratio');
  assert.ok(lines.some((l) => l.startsWith('tether_fs_used_bytes{host="host-2",host_id="h-2",mount="/var/lib \\"x\\"",')), 'quotes in a dimension escaped');
  assert.ok(lines.includes('tether_host_up{host="host-1",host_id="h-1"} 0'));
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (check.error) assert.fail(`promtool is needed (Debian package prometheus; npm test installs it): ${check.error.message}`);
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`.slice(0, 2000));
});
