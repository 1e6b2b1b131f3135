import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig, renderLimits, renderUnit, unitProfile, parseByteSize, parseCpuLimit } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-unit-'));
function cfgOf(toml: string) {
  const f = join(dir, `a${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(f, `hub = "http://hub.example:8080"\nstate = "/var/lib/tether-agent"\n${toml}`);
  return loadAgentConfig({ config: f }, {});
}
/** `Key=value` lines of a unit, in order. */
const settings = (unit: string) => unit.split('\n').filter((l) => /^[A-Z][A-Za-z]+=/.test(l));
const has = (unit: string, line: string) => settings(unit).includes(line);

test('profiles follow the capability lock: monitoring alone is the unprivileged one', () => {
  assert.equal(unitProfile(['metrics']), 'metrics');
  assert.equal(unitProfile([]), 'metrics');
  assert.equal(unitProfile(['metrics', 'docker', 'files']), 'confined');
  assert.equal(unitProfile(['metrics', 'files', 'exec']), 'full');
  assert.equal(unitProfile(['terminal']), 'full');
});

test('the metrics unit runs as tether-agent with no capabilities, a read-only system and its state directory', () => {
  const u = renderUnit(cfgOf(''));
  for (const l of ['User=tether-agent', 'CapabilityBoundingSet=', 'AmbientCapabilities=', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=read-only', 'PrivateTmp=yes', 'StateDirectory=tether-agent', 'StateDirectoryMode=0700', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK', 'ExecStart=/opt/tether-agent/current/bin/tether-agent --config ' + '/etc/tether/agent.toml', 'Restart=always', 'RestartPreventExitStatus=2'])
    assert.ok(has(u, l), `missing ${l} in\n${u}`);
  assert.ok(!settings(u).some((l) => l.startsWith('ReadWritePaths=')), 'metrics writes nowhere but its state');
});

test('confined capabilities keep root but only the Linux capabilities and writable paths they use', () => {
  const u = renderUnit(cfgOf('capabilities = ["metrics", "files", "process"]\nfile_roots = ["/srv/app", "/var/www"]\n'));
  assert.ok(!settings(u).some((l) => l.startsWith('User=')), 'root');
  assert.ok(has(u, 'ProtectSystem=strict') && has(u, 'NoNewPrivileges=yes'));
  const caps = settings(u).find((l) => l.startsWith('CapabilityBoundingSet='))!.slice('CapabilityBoundingSet='.length).split(' ');
  assert.deepEqual(caps, ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SYS_NICE', 'CAP_SYS_PTRACE']);
  assert.deepEqual(settings(u).filter((l) => l.startsWith('ReadWritePaths=')), ['ReadWritePaths=-/srv/app', 'ReadWritePaths=-/var/www', 'ReadWritePaths=-/etc']);
});

test('auto_update opens the install prefix, and only then', () => {
  assert.ok(!renderUnit(cfgOf('')).includes('ReadWritePaths=/opt/tether-agent'));
  assert.ok(has(renderUnit(cfgOf('auto_update = true\n')), 'ReadWritePaths=/opt/tether-agent'));
  assert.ok(has(renderUnit(cfgOf('auto_update = true\ncapabilities = ["metrics", "docker"]\n')), 'ReadWritePaths=/opt/tether-agent'));
});

test('exec or terminal is the full profile: root without a file-system sandbox, the kernel still protected', () => {
  const u = renderUnit(cfgOf('capabilities = ["metrics", "exec"]\n'));
  for (const l of ['ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'User=tether-agent']) assert.ok(!has(u, l), `${l} would break an operator's commands`);
  for (const l of ['ProtectKernelModules=yes', 'ProtectClock=yes', 'KillMode=control-group']) assert.ok(has(u, l), l);
});

test('paths that systemd would split or expand are refused, not written', () => {
  assert.throws(() => renderUnit(cfgOf('capabilities = ["files"]\nfile_roots = ["/srv/my app"]\n')), /cannot put "-\/srv\/my app" into a systemd unit/);
  assert.throws(() => renderUnit(cfgOf('capabilities = ["files"]\nfile_roots = ["/srv/%h"]\n')), /cannot put/);
  assert.throws(() => renderUnit({ ...cfgOf(''), stateDir: '/home/agent' }), /under \/var\/lib/);
});

test('limits become a drop-in; none gives none', () => {
  assert.equal(renderLimits(cfgOf('').limits, '/var/lib/tether-agent'), '');
  const c = cfgOf('[limits]\ncpu = "20%"\nmemory = "128M"\nio_read = "10M"\nio_write = "5M"\nio_write_iops = 300\n');
  assert.deepEqual(settings(renderLimits(c.limits, c.stateDir)), [
    'CPUQuota=20%',
    'MemoryMax=128M',
    'MemorySwapMax=0',
    'IOReadBandwidthMax=/var/lib/tether-agent 10M',
    'IOWriteBandwidthMax=/var/lib/tether-agent 5M',
    'IOWriteIOPSMax=/var/lib/tether-agent 300',
  ]);
});

test('bad limits are refused with the key and the reason', () => {
  assert.throws(() => cfgOf('[limits]\ncpu = "20"\n'), /config key limits: expected a CPU share such as "20%"/);
  assert.throws(() => cfgOf('[limits]\nmemory = "8M"\n'), /expected a memory limit such as "128M".*at least 32M/);
  assert.throws(() => cfgOf('[limits]\nswap = "1G"\n'), /unknown limit "swap" \(known: cpu, memory, io_read, io_write, io_read_iops, io_write_iops\)/);
  assert.throws(() => parseCpuLimit('0%'), /1% to 10000%/);
  assert.equal(parseByteSize('1g'), '1G');
  assert.throws(() => parseByteSize('1.5G'), /expected a size/);
});

test('token_file: read while not enrolled, refused when it is not a token', () => {
  const tf = join(dir, 'enroll.token');
  writeFileSync(tf, 'abc123\n');
  const c = cfgOf(`token_file = "${tf}"\n`);
  assert.equal(c.token, 'abc123');
  assert.equal(c.tokenFile, tf);
  assert.equal(cfgOf(`token_file = "${join(dir, 'absent')}"\n`).token, undefined, 'no file: nothing to enroll with (the agent says so)');
  writeFileSync(tf, 'two words\n');
  assert.throws(() => cfgOf(`token_file = "${tf}"\n`), /not an enrollment token/);
});
