/**
 * The agent's systemd unit, derived from its capability lock, and the drop-in that carries its
 * resource limits. install.sh writes both by running `tether agent-unit` from the artifact it just
 * unpacked, so the unit always matches the code that reads the same agent.toml.
 *
 * Three profiles, the narrowest that the capabilities allow:
 *
 * - `metrics` (monitoring only): the unprivileged `tether-agent` user, no capabilities at all, a
 *   read-only system, its state directory the only place it writes.
 * - `confined` (files, docker, systemd, cron, process, power): root, because these act on what only
 *   root may touch, but still a read-only system outside the paths each capability writes, and a
 *   capability bounding set holding only what those capabilities use.
 * - `full` (exec or terminal): root and unconfined but for the kernel's own settings. A command or a
 *   shell is the operator's: it must see the real /tmp, install packages and use setuid programs
 *   such as sudo, so a sandbox here would break it while protecting nothing the shell could not
 *   undo. Those capabilities are the whole-host trust decision the lock makes explicit.
 */
import type { Capability } from '@tether/protocol';
import type { AgentConfig, AgentLimits } from './config.js';

export type UnitProfile = 'metrics' | 'confined' | 'full';

export interface UnitOptions {
  /** where install.sh keeps versions: `<prefix>/<version>`, `<prefix>/current` */
  prefix: string;
  /** the agent.toml the service reads */
  configFile: string;
  /** the unprivileged account of the metrics profile */
  user: string;
}

export const UNIT_DEFAULTS: UnitOptions = { prefix: '/opt/tether-agent', configFile: '/etc/tether/agent.toml', user: 'tether-agent' };

const FULL: readonly Capability[] = ['exec', 'terminal'];

export function unitProfile(caps: readonly Capability[]): UnitProfile {
  if (caps.some((c) => FULL.includes(c))) return 'full';
  if (caps.some((c) => c !== 'metrics')) return 'confined';
  return 'metrics';
}

/** Linux capabilities each confined capability uses (the rest of root's are dropped). */
const LINUX_CAPS: Partial<Record<Capability, string[]>> = {
  files: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID'],
  docker: ['CAP_DAC_OVERRIDE'],
  process: ['CAP_KILL', 'CAP_SYS_NICE', 'CAP_SYS_PTRACE', 'CAP_DAC_READ_SEARCH'],
  cron: ['CAP_DAC_OVERRIDE', 'CAP_CHOWN', 'CAP_FOWNER', 'CAP_SETUID', 'CAP_SETGID'],
  // systemctl talks to PID 1 over its socket as uid 0; reboot and poweroff go the same way.
  systemd: ['CAP_DAC_OVERRIDE'],
  power: ['CAP_DAC_OVERRIDE'],
};

/** Where a confined capability writes; `-` : a path that does not exist is skipped, not fatal. */
function writablePaths(cfg: Pick<AgentConfig, 'capabilities' | 'fileRoots' | 'hostsFile' | 'cronLogDir'>): string[] {
  const out: string[] = [];
  const caps = cfg.capabilities;
  if (caps.includes('files')) {
    out.push(...cfg.fileRoots);
    // The hosts file is replaced by a rename in its directory.
    out.push(cfg.hostsFile.slice(0, cfg.hostsFile.lastIndexOf('/')) || '/');
  }
  if (caps.includes('cron')) out.push('/var/spool/cron', '/etc/cron.d', cfg.cronLogDir);
  return [...new Set(out)].map((p) => `-${p}`);
}

/** A value systemd reads as one word: paths with spaces or specifiers are refused, not quoted. */
function word(p: string): string {
  if (!/^-?\/[A-Za-z0-9._@+=,:\/-]*$/.test(p)) throw new Error(`cannot put ${JSON.stringify(p)} into a systemd unit (use a path of letters, digits and ._-@+=,:/)`);
  return p;
}

export function renderUnit(cfg: Pick<AgentConfig, 'capabilities' | 'fileRoots' | 'hostsFile' | 'cronLogDir' | 'stateDir'> & { autoUpdate?: boolean }, o: UnitOptions = UNIT_DEFAULTS): string {
  const profile = unitProfile(cfg.capabilities);
  const state = cfg.stateDir;
  if (!state.startsWith('/var/lib/')) throw new Error(`the service keeps its state under /var/lib (StateDirectory=), not ${state}`);
  const stateName = word(state).slice('/var/lib/'.length);
  const lines: string[] = [
    '# Written by the Tether installer from ' + word(o.configFile) + ' (`tether agent-unit`).',
    `# Profile: ${profile} (capabilities: ${cfg.capabilities.join(', ') || 'none'}). Limits live in tether-agent.service.d/limits.conf.`,
    '[Unit]',
    'Description=Tether agent',
    'Documentation=https://github.com/tether/tether',
    'Wants=network-online.target',
    'After=network-online.target',
    // Restart for ever: a hub that is down for an hour must find its agents back.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    // On Node 24 the process's comm is its main thread's name (MainThread): the journal names it instead.
    'SyslogIdentifier=tether-agent',
    `ExecStart=${word(o.prefix)}/current/bin/tether-agent --config ${word(o.configFile)}`,
    'Restart=always',
    'RestartSec=3',
    // Exit status 2: the hub refused this agent for good (revoked, bad token); restarting cannot help.
    'RestartPreventExitStatus=2',
    'TimeoutStopSec=15',
    // Commands, jobs and terminals run in their own transient scopes; what is left in the agent's
    // cgroup at stop is the agent's.
    'KillMode=control-group',
    `StateDirectory=${stateName}`,
    'StateDirectoryMode=0700',
    'UMask=0077',
    // Always, whatever the profile: the kernel's own settings stay the kernel's.
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectClock=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'SystemCallArchitectures=native',
  ];
  if (profile === 'metrics' || profile === 'confined') {
    lines.push(
      ...(profile === 'metrics' ? [`User=${o.user}`, `Group=${o.user}`, 'CapabilityBoundingSet=', 'AmbientCapabilities=', 'NoNewPrivileges=yes', 'RestrictSUIDSGID=yes', 'PrivateTmp=yes', 'RemoveIPC=yes'] : []),
      'ProtectSystem=strict',
      'ProtectHome=read-only',
      'ProtectKernelTunables=yes',
      'ProtectHostname=yes',
      'ProtectControlGroups=yes',
      'RestrictNamespaces=yes',
      'KeyringMode=private',
      // The hub over IP; journald, Docker and D-Bus over unix sockets; netlink for the network collectors.
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK',
      'SystemCallFilter=@system-service',
      'SystemCallErrorNumber=EPERM',
      // The GPU collector runs nvidia-smi, which opens /dev/nvidia* (major 195: nvidia-frontend, and
      // nvidia-uvm): PrivateDevices would hide them. A host without them ignores the two lines.
      'DevicePolicy=closed',
      'DeviceAllow=char-nvidia-frontend rw',
      'DeviceAllow=char-nvidia-uvm rw',
    );
  }
  if (profile === 'confined') {
    const caps = [...new Set(cfg.capabilities.flatMap((c) => LINUX_CAPS[c] ?? []))].sort();
    lines.push(`CapabilityBoundingSet=${caps.join(' ')}`, 'NoNewPrivileges=yes', 'PrivateTmp=yes');
    for (const p of writablePaths(cfg)) lines.push(`ReadWritePaths=${word(p)}`);
  }
  // auto_update: the agent installs new versions beside itself (update.ts).
  if (cfg.autoUpdate && profile !== 'full') lines.push(`ReadWritePaths=${word(o.prefix)}`);
  lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return lines.join('\n');
}

/** The limits drop-in, or '' when agent.toml sets none (install.sh then removes the drop-in). */
export function renderLimits(limits: AgentLimits, stateDir: string): string {
  const out: string[] = [];
  if (limits.cpu) out.push(`CPUQuota=${limits.cpu}`);
  if (limits.memory) out.push(`MemoryMax=${limits.memory}`, 'MemorySwapMax=0');
  // IO limits name a block device; systemd finds the one under a path: the state directory's.
  const dev = word(stateDir);
  if (limits.ioRead) out.push(`IOReadBandwidthMax=${dev} ${limits.ioRead}`);
  if (limits.ioWrite) out.push(`IOWriteBandwidthMax=${dev} ${limits.ioWrite}`);
  if (limits.ioReadIops) out.push(`IOReadIOPSMax=${dev} ${limits.ioReadIops}`);
  if (limits.ioWriteIops) out.push(`IOWriteIOPSMax=${dev} ${limits.ioWriteIops}`);
  if (!out.length) return '';
  return ['# Written by the Tether installer from [limits] in agent.toml (`tether agent-unit --part limits`).', '# They bind the agent alone: its commands, jobs and terminals run in their own scopes.', '[Service]', ...out, ''].join('\n');
}
