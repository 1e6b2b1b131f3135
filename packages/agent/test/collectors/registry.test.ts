// The registry: enable switches and intervals by name, one report per tick with failures kept
// apart, and per-collector scheduling that does not pile up behind a slow source.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectOnce, collectorNames, createCollectors, startCollectors, type Collector, type ScheduledCollector } from '../../src/collectors/index.js';

test('every collector is on by default with its default interval; switches and intervals apply by name', () => {
  const all = createCollectors();
  assert.deepEqual(all.map((c) => c.name), ['static', 'usage', 'processes', 'connections', 'sensors', 'gpu', 'self']);
  assert.deepEqual(collectorNames, [...all.map((c) => c.name), 'containers', 'units'], 'containers and units need a capability');
  assert.equal(all.find((c) => c.name === 'usage')?.intervalMs, 5_000);
  assert.equal(all.find((c) => c.name === 'processes')?.intervalMs, 15_000);
  const some = createCollectors({ enabled: { processes: false, connections: false }, intervalsMs: { usage: 1_000, self: -5 } });
  assert.deepEqual(some.map((c) => c.name), ['static', 'usage', 'sensors', 'gpu', 'self']);
  assert.equal(some.find((c) => c.name === 'usage')?.intervalMs, 1_000);
  assert.equal(some.find((c) => c.name === 'self')?.intervalMs, 60_000, 'a non-positive interval keeps the default');
});

test('containers runs only with the docker capability, units only with systemd; both switch off and take intervals by name', () => {
  assert.deepEqual(createCollectors({ capabilities: ['metrics'] }).filter((c) => ['containers', 'units'].includes(c.name)), []);
  const both = createCollectors({ capabilities: ['metrics', 'docker', 'systemd'], intervalsMs: { containers: 2_000 } });
  assert.equal(both.find((c) => c.name === 'containers')?.intervalMs, 2_000);
  assert.equal(both.find((c) => c.name === 'units')?.intervalMs, 30_000);
  const off = createCollectors({ capabilities: ['docker', 'systemd'], enabled: { units: false } });
  assert.deepEqual(off.filter((c) => ['containers', 'units'].includes(c.name)).map((c) => c.name), ['containers']);
});

function fake(name: 'usage' | 'self' | 'processes', collect: Collector<never>['collect'], intervalMs = 20): ScheduledCollector {
  return { name, intervalMs, collector: { name, defaultIntervalMs: intervalMs, collect } } as unknown as ScheduledCollector;
}

test('collectOnce: a collector that throws is reported apart, the others still report', async () => {
  const [usage] = createCollectors({ enabled: Object.fromEntries(collectorNames.map((n) => [n, n === 'usage'])) });
  const broken = fake('self', async () => { throw new Error('no /proc'); });
  const { report, errors } = await collectOnce([usage!, broken]);
  assert.ok(report.usage);
  assert.equal(report.self, undefined);
  assert.deepEqual(errors, { self: 'no /proc' });
});

test('startCollectors: runs each on its interval, skips a tick while the previous one runs, stops', async () => {
  let calls = 0;
  let running = 0;
  let overlap = false;
  const slow = fake('usage', async () => {
    calls++;
    if (running++) overlap = true;
    await new Promise((r) => setTimeout(r, 50)); // slower than its 20 ms interval
    running--;
    return undefined as never;
  });
  let errs = 0;
  const failing = fake('self', async () => { throw new Error('x'); });
  const stop = startCollectors([slow, failing], () => {}, () => errs++);
  await new Promise((r) => setTimeout(r, 230));
  stop();
  const at = calls;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(overlap, false);
  assert.ok(calls >= 3 && calls <= 6, `calls ${calls}`);
  assert.equal(calls, at, 'no calls after stop');
  assert.ok(errs >= 5, `errors ${errs}`);
});

test('startCollectors: one clock for all; collectors due together run in one tick with the same now, on the grid from the start', async () => {
  const seen: Record<string, number[]> = { usage: [], processes: [] };
  const record = (name: 'usage' | 'processes') => async (now: number) => {
    seen[name]!.push(now);
    return undefined as never;
  };
  const t0 = Date.now();
  const stop = startCollectors([fake('usage', record('usage'), 40), fake('processes', record('processes'), 80)], () => {});
  await new Promise((r) => setTimeout(r, 420));
  stop();
  const { usage, processes } = seen as { usage: number[]; processes: number[] };
  assert.ok(usage.length >= 6 && processes.length >= 3, `usage ${usage.length}, processes ${processes.length}`);
  // every processes turn is also a usage turn: the same tick, the same now
  for (const t of processes) assert.ok(usage.includes(t), `processes ran at ${t - t0} ms without usage: ${usage.map((u) => u - t0)}`);
  // no turn before its slot on the grid (a late tick runs once and keeps the schedule)
  assert.ok(usage.every((t, i) => t - t0 >= i * 40 - 1), `usage turns ${usage.map((u) => u - t0)}`);
  assert.ok(processes.every((t, i) => t - t0 >= i * 80 - 1), `processes turns ${processes.map((p) => p - t0)}`);
  assert.equal(new Set(usage).size, usage.length, 'one run per tick');
});
