import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffBoundMs, fullJitterMs } from '../src/backoff.js';

test('the bound doubles from 1 s and stops at the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffBoundMs(a, 60_000)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  assert.equal(backoffBoundMs(1000, 5000), 5000);
});

test('full jitter spreads delays uniformly over [0, bound)', () => {
  assert.equal(fullJitterMs(3, 60_000, () => 0), 0);
  assert.equal(fullJitterMs(3, 60_000, () => 0.5), 4000);
  assert.ok(fullJitterMs(3, 60_000, () => 0.999999) < 8000);
  // 10,000 agents returning at once: no second of the first 8 s gets more than ~1.6x its fair share.
  const buckets = new Array(8).fill(0);
  for (let i = 0; i < 10_000; i++) buckets[Math.floor(fullJitterMs(3, 60_000) / 1000)]++;
  for (const b of buckets) assert.ok(b > 10_000 / 8 / 1.6 && b < (10_000 / 8) * 1.6, `bucket ${b}`);
});
