/**
 * Cron schedules as the agent checks them before writing a crontab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSchedule } from '../src/managers/cron.js';

test('a schedule that never fires (31 February, 30 February, 31 April and June) is refused and says why', () => {
  for (const [s, why] of [
    ['0 0 31 2 *', /"0 0 31 2 \*" never fires: no date has day-of-month 31 in month 2/],
    ['0 0 30 2 *', /never fires/],
    ['* * 31 4,6 *', /day-of-month 31 in month 4,6/],
  ] as const) {
    assert.throws(() => checkSchedule(s), (err: Error & { code?: string }) => err.code === 'bad_request' && why.test(err.message), s);
  }
});

test('rare but real schedules pass with their next runs: 29 February, a day-of-month or a weekday, @reboot', () => {
  const leap = checkSchedule('0 0 29 2 *').nextRuns;
  assert.ok(leap.length > 0 && leap.every((t) => new Date(t).getMonth() === 1 && new Date(t).getDate() === 29), JSON.stringify(leap));
  // Classic cron ORs day-of-month and day-of-week when both are set: Mondays count.
  assert.ok(checkSchedule('0 0 31 2 1').nextRuns.length > 0);
  assert.ok(checkSchedule('*/5 * * * *').nextRuns.length > 0);
  assert.deepEqual(checkSchedule('@reboot').nextRuns, [], 'at boot: no time to show, and valid');
});
