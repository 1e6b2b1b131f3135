import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan, StrategyError } from '../src/modules/jobs/strategy.js';
import { globToRegExp } from '../src/modules/jobs/routes.js';
import { redactSpec } from '../src/modules/jobs/service.js';

const batches = (p: ReturnType<typeof plan>, n: number) => Array.from({ length: n }, (_, i) => p.batchOf(i));

test('strategy plans: batches, concurrency and failure thresholds', () => {
  const never = Number.MAX_SAFE_INTEGER;
  const par = plan({ kind: 'parallel', concurrency: 3 }, 10);
  assert.deepEqual([par.batches, par.concurrency, par.maxFailures], [1, 3, never]);
  const seq = plan({ kind: 'sequence' }, 5);
  assert.deepEqual([seq.batches, seq.concurrency, seq.maxFailures], [1, 1, 0]);
  assert.equal(plan({ kind: 'sequence', continueOnError: true }, 5).maxFailures, never);
  const eo = plan({ kind: 'evenodd' }, 5);
  assert.deepEqual(batches(eo, 5), [0, 1, 0, 1, 0]);
  assert.equal(plan({ kind: 'evenodd' }, 1).batches, 1);
  const roll = plan({ kind: 'rolling', batchSize: 2, maxFailures: 1 }, 5);
  assert.deepEqual(batches(roll, 5), [0, 0, 1, 1, 2]);
  assert.deepEqual([roll.batches, roll.maxFailures], [3, 1]);
  const pct = plan({ kind: 'rolling', batchPercent: 25, maxFailurePercent: 10 }, 10);
  assert.deepEqual(batches(pct, 10), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
  assert.equal(pct.maxFailures, 1);
  assert.throws(() => plan({ kind: 'rolling', batchSize: 2, batchPercent: 10 }, 5), StrategyError);
  assert.throws(() => plan({ kind: 'parallel', batchSize: 2 }, 5), StrategyError);
});

test('hostname globs match whole names, case-insensitively, with regex characters literal', () => {
  const re = globToRegExp('web-?.prod*');
  assert.ok(re.test('web-1.prod'));
  assert.ok(re.test('WEB-2.production'));
  assert.ok(!re.test('web-12.prod'));
  assert.ok(!re.test('xweb-1.prod'));
  assert.ok(!globToRegExp('a.b').test('axb'));
});

test('job views never show env values or stdin', () => {
  const r = redactSpec({ command: ['x'], env: { TOKEN: 's3cret' }, stdin: 'password' });
  assert.deepEqual(r.env, { TOKEN: '[redacted]' });
  assert.equal(r.stdin, '[8 bytes]');
});
