// The agent's own figures: RSS and CPU agree with the process's view of itself, event-loop lag
// shows a blocked loop, and the agent's counters come through the hook (bounded, faults contained).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { LagSampler, selfCollector } from '../../src/collectors/self.js';
import { between, sh } from './helpers.js';

function ownTicks(): number {
  const s = readFileSync('/proc/self/stat', 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

test('RSS agrees with ps; CPU % agrees with /proc/self/stat over the same interval; a blocked loop shows as lag', async () => {
  // a 50 ms sampler: a 400 ms block is then always seen, with at least 350 ms of it
  const c = selfCollector(undefined, { lagPeriodMs: 50 });
  const t0 = Date.now();
  const k0 = ownTicks();
  const a = await c.collect(t0);
  assert.ok(a);
  assert.equal(a.cpuPercent, undefined, 'no CPU % from one reading');
  assert.equal(a.pid, process.pid);
  const psRss = Number(sh('ps', ['-o', 'rss=', '-p', String(process.pid)]).trim()) * 1024;
  assert.ok(between(psRss, a.rssBytes, process.memoryUsage().rss, 4 * 1024 * 1024));
  await new Promise((r) => setTimeout(r, 60)); // the lag sampler starts with the first collection
  const until = Date.now() + 400;
  while (Date.now() < until) {
    // spin: blocks the event loop and uses one core (as much of it as the machine gives us)
  }
  await new Promise((r) => setTimeout(r, 30)); // the delayed timer fires and records the block
  const t1 = Date.now();
  const k1 = ownTicks();
  const b = await c.collect(t1);
  // ticks are 10 ms: over ~500 ms that is ±2 points, plus the work between the readings
  const independent = ((k1 - k0) * 10 * 100) / (t1 - t0);
  assert.ok(b?.cpuPercent !== undefined && Math.abs(b.cpuPercent - independent) < 15, `cpu ${b?.cpuPercent} vs /proc ${independent}`);
  assert.ok(b.cpuPercent > 5, `cpu ${b.cpuPercent}`);
  assert.ok((b.eventLoopLagMs.max ?? 0) > 200, `lag ${JSON.stringify(b.eventLoopLagMs)}`);
});

test('an idle loop reports little lag', async () => {
  const c = selfCollector(undefined, { lagPeriodMs: 50 });
  await c.collect(Date.now());
  await new Promise((r) => setTimeout(r, 300));
  const r = await c.collect(Date.now());
  assert.ok((r?.eventLoopLagMs.p99 ?? 99) < 50, `lag ${JSON.stringify(r?.eventLoopLagMs)}`);
});

test('the lag sampler: nothing before its first fire, a block longer than its period always seen, figures start over after each take', async () => {
  const lag = new LagSampler(100);
  try {
    assert.deepEqual(lag.take(), { mean: 0, p99: 0, max: 0 });
    await new Promise((r) => setTimeout(r, 150));
    const until = Date.now() + 350;
    while (Date.now() < until) {
      // blocked for 350 ms: some fire falls due inside it and comes at least 250 ms late
    }
    await new Promise((r) => setTimeout(r, 20));
    const a = lag.take();
    assert.ok(a.max >= 240 && a.max <= 400, `max ${a.max}`);
    assert.ok(a.p99 === a.max && a.mean > 0 && a.mean <= a.max, JSON.stringify(a));
    await new Promise((r) => setTimeout(r, 250));
    const b = lag.take();
    assert.ok(b.max < 100, `after the block: ${JSON.stringify(b)}`);
  } finally {
    lag.stop();
  }
});

test('counters from the selfStats hook are reported, bounded, and a throwing hook costs only the counters', async () => {
  const r = await selfCollector(() => ({ queueLength: 4, reconnects: 2, bad: Number.NaN })).collect(Date.now());
  assert.deepEqual(r?.counters, { queueLength: 4, reconnects: 2 });
  const many = await selfCollector(() => Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`c${i}`, i]))).collect(Date.now());
  assert.equal(Object.keys(many?.counters ?? {}).length, 32);
  const faulty = await selfCollector(() => { throw new Error('boom'); }).collect(Date.now());
  assert.deepEqual(faulty?.counters, {});
  assert.ok((faulty?.rssBytes ?? 0) > 0);
});
