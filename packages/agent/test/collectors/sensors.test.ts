// Sensors: on this machine (no hwmon, thermal zones or power supplies) the lists are empty and
// match what sysfs holds; on a fake sysfs tree the files are read as the kernel documents them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sensorsCollector, sshSessions } from '../../src/collectors/sensors.js';
import { UTMP_RECORD_SIZE } from '../../src/collectors/util.js';
import { fakeTree, sh } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };

test('real sysfs: as many temperatures, fans and power supplies as sysfs has files for, none invented', async () => {
  const count = (glob: string) => Number(sh('sh', ['-c', `ls -d ${glob} 2>/dev/null | wc -l`]).trim());
  const r = await sensorsCollector(roots).collect(Date.now());
  assert.ok(r);
  assert.equal(r.temperatures.length, count('/sys/class/hwmon/*/temp*_input') + count('/sys/class/thermal/thermal_zone*/temp'));
  assert.equal(r.fans.length, count('/sys/class/hwmon/*/fan*_input'));
  assert.equal(r.power.length, count('/sys/class/power_supply/*'));
  // SSH sessions: the sshd session processes ps shows ("sshd: user@tty")
  const ps = sh('ps', ['-eo', 'args=']).split('\n').filter((l) => /^sshd(-session)?: [^\s@]+@\S+$/.test(l.trim()));
  assert.equal(r.sshSessions.filter((s) => s.source === 'process').length, ps.length);
});

test('fake sysfs: hwmon temperatures with labels and limits, fans, thermal zones, battery and mains', async () => {
  const t = fakeTree();
  try {
    t.write('class/hwmon/hwmon0/name', 'coretemp\n');
    t.write('class/hwmon/hwmon0/temp1_input', '45000\n');
    t.write('class/hwmon/hwmon0/temp1_label', 'Package id 0\n');
    t.write('class/hwmon/hwmon0/temp1_max', '80000\n');
    t.write('class/hwmon/hwmon0/temp1_crit', '100000\n');
    t.write('class/hwmon/hwmon1/name', 'nct6775\n');
    t.write('class/hwmon/hwmon1/fan2_input', '1250\n');
    t.write('class/thermal/thermal_zone0/type', 'x86_pkg_temp\n');
    t.write('class/thermal/thermal_zone0/temp', '47500\n');
    t.write('class/thermal/thermal_zone0/trip_point_0_type', 'passive\n');
    t.write('class/thermal/thermal_zone0/trip_point_0_temp', '90000\n');
    t.write('class/thermal/thermal_zone0/trip_point_1_type', 'critical\n');
    t.write('class/thermal/thermal_zone0/trip_point_1_temp', '105000\n');
    t.write('class/power_supply/BAT0/type', 'Battery\n');
    t.write('class/power_supply/BAT0/status', 'Discharging\n');
    t.write('class/power_supply/BAT0/capacity', '76\n');
    t.write('class/power_supply/BAT0/current_now', '1500000\n'); // 1.5 A
    t.write('class/power_supply/BAT0/voltage_now', '12000000\n'); // 12 V
    t.write('class/power_supply/BAT0/energy_now', '38000000\n');
    t.write('class/power_supply/BAT0/energy_full', '50000000\n');
    t.write('class/power_supply/AC/type', 'Mains\n');
    t.write('class/power_supply/AC/online', '0\n');
    const r = await sensorsCollector({ ...roots, sysRoot: t.root, procRoot: t.root, utmpPath: `${t.root}/utmp` }).collect(Date.now());
    assert.deepEqual(r?.temperatures, [
      { chip: 'coretemp', label: 'Package id 0', celsius: 45, maxCelsius: 80, critCelsius: 100 },
      { chip: 'x86_pkg_temp', label: 'thermal_zone0', celsius: 47.5, critCelsius: 105 },
    ]);
    assert.deepEqual(r?.fans, [{ chip: 'nct6775', label: 'fan2', rpm: 1250 }]);
    assert.deepEqual(r?.power.sort((a, b) => a.name.localeCompare(b.name)), [
      { name: 'AC', type: 'Mains', online: false },
      { name: 'BAT0', type: 'Battery', status: 'Discharging', capacityPercent: 76, powerWatts: 18, energyWh: 38, energyFullWh: 50 },
    ]);
    assert.deepEqual(r?.sshSessions, []);
  } finally {
    t.cleanup();
  }
});

test('SSH sessions from utmp entries with a host and from sshd session processes', () => {
  const t = fakeTree();
  try {
    const buf = Buffer.alloc(UTMP_RECORD_SIZE * 2);
    buf.writeInt16LE(7, 0); // a local console login: no host, not SSH
    buf.write('tty1', 8);
    buf.write('root', 44);
    const o = UTMP_RECORD_SIZE;
    buf.writeInt16LE(7, o);
    buf.writeInt32LE(900, o + 4);
    buf.write('pts/0', o + 8);
    buf.write('alice', o + 44);
    buf.write('198.51.100.7', o + 76);
    buf.writeInt32LE(1_790_000_000, o + 340);
    t.write('utmp', buf);
    const stat = (pid: number) => `${pid} (sshd) S 1 ${pid} ${pid} 0 -1 4194560 100 0 0 0 5 2 0 0 20 0 1 0 500 10000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;
    for (const pid of [900, 901, 902, 903]) t.write(`${pid}/stat`, stat(pid));
    t.write('900/cmdline', 'sshd: alice@pts/0\0');
    t.write('901/cmdline', 'sshd: bob@notty\0');
    t.write('902/cmdline', 'sshd: bob [priv]\0');
    t.write('903/cmdline', '/usr/sbin/sshd\0-D\0');
    assert.deepEqual(sshSessions({ ...roots, procRoot: t.root, utmpPath: `${t.root}/utmp` }), [
      { user: 'alice', host: '198.51.100.7', tty: 'pts/0', pid: 900, loginTime: 1_790_000_000_000, source: 'utmp' },
      { user: 'bob', host: '', tty: 'notty', pid: 901, source: 'process' },
    ]);
  } finally {
    t.cleanup();
  }
});
