/**
 * systemd (capability `systemd`): systemctl and journalctl with argument arrays. Unit names are
 * checked against systemd's own alphabet and passed after `--`, so one can never be an option.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { isUnitName, type Capability, type JournalEntry, type SystemdRequestBody, type SystemdResponseBody, type UnitSummary } from '@tether/protocol';
import { ManagerFailure, firstLine, followProcess, refusal, run, serve, type ManagerLink, type StreamRegistry } from './common.js';

export interface SystemdConfig {
  capabilities: Capability[];
  /** where systemd keeps its runtime state: absent means systemd is not running here */
  runDir?: string;
}

/** `systemctl list-units --plain --no-legend` lines: UNIT LOAD ACTIVE SUB DESCRIPTION… */
export function parseUnitList(text: string): UnitSummary[] {
  const out: UnitSummary[] = [];
  for (const line of text.split('\n')) {
    const t = line.replace(/^[●*]\s*/, '').trim();
    if (!t) continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(t);
    if (!m) continue;
    out.push({ unit: m[1]!.slice(0, 256), load: m[2]!.slice(0, 32), active: m[3]!.slice(0, 32), sub: m[4]!.slice(0, 32), description: m[5]!.slice(0, 1024) });
    if (out.length >= 10_000) break;
  }
  return out;
}

/** `systemctl show` output: Key=Value lines. */
export function parseProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    const k = line.slice(0, i);
    if (!/^[A-Za-z0-9]{1,64}$/.test(k)) continue;
    out[k] = line.slice(i + 1, i + 1 + 8192);
    if (++n >= 512) break;
  }
  return out;
}

/** journalctl -o json lines → entries. */
export function parseJournal(text: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    // MESSAGE may be an array of bytes when it is not valid UTF-8.
    const msg = Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE as number[]).toString('utf8') : String(e.MESSAGE ?? '');
    const prio = Number(e.PRIORITY);
    const pid = Number(e._PID);
    out.push({
      ts: Math.floor(Number(e.__REALTIME_TIMESTAMP ?? 0) / 1000),
      message: msg.slice(0, 16384),
      ...(Number.isInteger(prio) && prio >= 0 && prio <= 7 ? { priority: prio } : {}),
      ...(Number.isInteger(pid) && pid > 0 ? { pid } : {}),
      ...(typeof e._SYSTEMD_UNIT === 'string' ? { unit: e._SYSTEMD_UNIT.slice(0, 256) } : {}),
      ...(typeof e.SYSLOG_IDENTIFIER === 'string' ? { identifier: e.SYSLOG_IDENTIFIER.slice(0, 256) } : {}),
    });
  }
  return out.slice(-10_000);
}

const SHOW_PROPS = [
  'Id', 'Names', 'Description', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'UnitFilePreset', 'FragmentPath', 'MainPID',
  'ExecMainStartTimestamp', 'ActiveEnterTimestamp', 'InactiveEnterTimestamp', 'NRestarts', 'Result', 'MemoryCurrent', 'CPUUsageNSec',
  'TasksCurrent', 'Restart', 'User', 'Type', 'After', 'Wants', 'Requires', 'WantedBy', 'CanReload', 'CanStart', 'CanStop',
];

function journalSince(ms: number): string {
  // journalctl takes "@<seconds since the epoch>"
  return `@${Math.floor(ms / 1000)}`;
}

export class SystemdService {
  private unserve: (() => void) | undefined;

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: SystemdConfig,
    private readonly streams: StreamRegistry,
    private readonly log: Logger,
  ) {}

  start(): this {
    this.unserve = serve(this.link, 'systemd.request', 'systemd.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  private async systemctl(args: string[], timeoutMs = 90_000) {
    return run('systemctl', ['--no-pager', ...args], { timeoutMs });
  }

  async handle(req: SystemdRequestBody): Promise<SystemdResponseBody> {
    if (!this.cfg.capabilities.includes('systemd')) return refusal('systemd', this.cfg.capabilities);
    // systemd as the init system leaves /run/systemd/system behind (what sd_booted() checks).
    if (!existsSync(this.cfg.runDir ?? '/run/systemd/system')) {
      return { ok: false, error: { code: 'unavailable', message: 'systemd is not the init system on this host (no /run/systemd/system)' } };
    }
    const unitOps = ['show', 'start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask', 'journal'];
    if (unitOps.includes(req.op) && (!req.unit || !isUnitName(req.unit))) {
      throw new ManagerFailure('bad_request', `not a unit name: ${JSON.stringify(req.unit ?? '')} (letters, digits, ":_.@-" and a type suffix such as .service)`);
    }
    const unit = req.unit!;
    switch (req.op) {
      case 'list': {
        const args = ['list-units', '--all', '--plain', '--no-legend', '--full'];
        if (req.type) args.push(`--type=${req.type}`);
        if (req.pattern) args.push('--', req.pattern);
        const r = await this.systemctl(args);
        if (r.code !== 0) throw new ManagerFailure('failed', `systemctl list-units: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        return { ok: true, units: parseUnitList(r.stdout) };
      }
      case 'show': {
        const r = await this.systemctl(['show', `--property=${SHOW_PROPS.join(',')}`, '--', unit]);
        if (r.code !== 0) throw new ManagerFailure('failed', `systemctl show ${unit}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        const properties = parseProperties(r.stdout);
        if (properties.LoadState === 'not-found') throw new ManagerFailure('not_found', `no unit ${unit} on this host`);
        return { ok: true, properties };
      }
      case 'start':
      case 'stop':
      case 'restart':
      case 'reload':
      case 'enable':
      case 'disable':
      case 'mask':
      case 'unmask': {
        const args: string[] = [req.op];
        if (req.now && ['enable', 'disable', 'mask'].includes(req.op)) args.push('--now');
        const r = await this.systemctl([...args, '--', unit]);
        if (r.code !== 0) {
          const why = firstLine(r.stderr) || `exit ${r.code}`;
          const code = /not (be )?found|does not exist|No such file/i.test(why) ? 'not_found' : /masked/i.test(why) ? 'conflict' : /denied|Access/i.test(why) ? 'permission' : 'failed';
          throw new ManagerFailure(code, `systemctl ${req.op} ${unit}: ${why}`);
        }
        this.log.info({ op: req.op, unit }, 'systemd unit changed');
        return { ok: true };
      }
      case 'daemon_reload': {
        const r = await this.systemctl(['daemon-reload']);
        if (r.code !== 0) throw new ManagerFailure('failed', `systemctl daemon-reload: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        this.log.info({ op: 'daemon-reload' }, 'systemd reloaded');
        return { ok: true };
      }
      case 'journal': {
        const args = ['--no-pager', '-u', unit];
        if (req.since !== undefined) args.push('--since', journalSince(req.since));
        if (req.streamId) {
          // Followed as text lines (short-iso): a stream carries text, the console shows it as it comes.
          args.push('-f', '-n', String(req.lines ?? 50), '-o', 'short-iso');
          const out = this.streams.open(req.streamId);
          followProcess('journalctl', args, out, this.streams);
          return { ok: true };
        }
        args.push('-n', String(req.lines ?? 200), '-o', 'json');
        const r = await run('journalctl', args, { timeoutMs: 60_000, maxBytes: 32 * 1024 * 1024 });
        if (r.code !== 0) throw new ManagerFailure('failed', `journalctl: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        const entries = parseJournal(r.stdout);
        return { ok: true, entries, truncated: entries.length >= 10_000 };
      }
      default:
        throw new ManagerFailure('bad_request', `unknown systemd operation ${JSON.stringify((req as { op: string }).op)}`);
    }
  }
}
