/**
 * What `systemctl can-hibernate|can-suspend` answers, as the agent reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleepState } from '../src/managers/power.js';

test('only "yes" makes hibernate or suspend possible; every other answer is the reason it is not', () => {
  assert.deepEqual(sleepState('hibernate', { code: 0, stdout: 'yes\n', stderr: '' }), { possible: true });
  assert.deepEqual(sleepState('hibernate', { code: 1, stdout: 'na\n', stderr: '' }), { possible: false, reason: 'not supported by this host (kernel, hardware or no swap to resume from) (systemctl can-hibernate: na)' });
  assert.match(sleepState('suspend', { code: 1, stdout: 'no\n', stderr: '' }).reason!, /not configured on this host \(systemctl can-suspend: no\)/);
  assert.match(sleepState('suspend', { code: 1, stdout: 'challenge\n', stderr: '' }).reason!, /interactive authorisation/);
  assert.equal(sleepState('suspend', { code: 1, stdout: '', stderr: 'System has not been booted with systemd as init system (PID 1). Can\'t operate.\n' }).reason, "systemctl can-suspend: System has not been booted with systemd as init system (PID 1). Can't operate.");
  assert.equal(sleepState('hibernate', new Error('systemctl is not available on this host (ENOENT)')).reason, 'systemctl can-hibernate: systemctl is not available on this host (ENOENT)');
});
