/**
 * cron (capability `cron`): entries in a user's crontab that carry Tether's tag. An entry is two
 * lines — a comment holding its id and what it is, then the job line ending in the same tag:
 *
 *   # tether:1a2b3c4d5e6f {"name":"backup","command":"/usr/local/bin/backup","enabled":true}
 *   0 3 * * * /bin/sh -c '…( /usr/local/bin/backup )…' >>/var/log/tether-cron/root-1a2b3c4d5e6f.log 2>&1 # tether:1a2b3c4d5e6f
 *
 * Every other line of the crontab is kept as it is, in its place: Tether never reads, changes or
 * removes what it did not write. The job line wraps the command so that each run's start, exit
 * code and output land in the entry's log, which the agent reads back for "last runs".
 */
import { chownSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Capability, CronEntry, CronEntryInput, CronRequestBody, CronResponseBody, CronRun } from '@tether/protocol';
import { ManagerFailure, firstLine, refusal, run, serve, type ManagerLink } from './common.js';

export interface CronConfig {
  capabilities: Capability[];
  /** where run logs go (one file per entry) */
  cronLogDir: string;
  etcRoot?: string;
}

const META = /^# tether:([a-z0-9]{8,16}) (\{.*\})\s*$/;
const JOB_TAG = / # tether:([a-z0-9]{8,16})\s*$/;
const MAX_LOG = 1024 * 1024;
const KEEP_LOG = 256 * 1024;
const MAX_RUN_OUTPUT = 16 * 1024;

/**
 * Schedules cron itself understands: five fields of numbers, ranges, steps, lists and names, or an
 * @ name; and that fire at all. `0 0 31 2 *` is valid syntax for cron, which then never runs it:
 * an entry nobody will ever see run is refused, not accepted with no next run.
 */
export function checkSchedule(schedule: string): { nextRuns: number[] } {
  const s = schedule.trim();
  if (s.startsWith('@')) {
    const map: Record<string, string | null> = { '@reboot': null, '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0', '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *' };
    if (!(s in map)) throw new ManagerFailure('bad_request', `unknown schedule ${JSON.stringify(s)}`);
    const expr = map[s];
    return { nextRuns: expr ? nextRuns(expr) : [] };
  }
  const fields = s.split(/\s+/);
  if (fields.length !== 5) throw new ManagerFailure('bad_request', `a schedule has five fields (minute hour day-of-month month day-of-week): ${JSON.stringify(s)}`);
  // croner knows more than cron does (L, W, #, ?, seconds): only what cron knows passes.
  for (const f of fields) if (!/^([0-9*/,-]|[A-Za-z]{3})+$/.test(f)) throw new ManagerFailure('bad_request', `cron does not understand ${JSON.stringify(f)} in ${JSON.stringify(s)}`);
  const next = nextRuns(s);
  // croner looks years ahead (29 February is found); nothing found means no date ever matches.
  if (next.length === 0) throw new ManagerFailure('bad_request', `${JSON.stringify(s)} never fires: no date has day-of-month ${fields[2]} in month ${fields[3]}`);
  return { nextRuns: next };
}

function nextRuns(expr: string, n = 5): number[] {
  try {
    return new Cron(expr, { paused: true }).nextRuns(n).map((d) => d.getTime());
  } catch (err) {
    throw new ManagerFailure('bad_request', `not a valid schedule ${JSON.stringify(expr)}: ${(err as Error).message.replace(/^CronPattern: /, '')}`);
  }
}

/** Single-quotes for /bin/sh, and cron's own rule: an unescaped % is a newline. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function jobLine(id: string, e: { schedule: string; command: string; enabled: boolean }, logFile: string): string {
  const script = `echo "@@tether start $(date +%s)"; ( ${e.command} ); echo "@@tether exit $? $(date +%s)"`;
  const line = `${e.schedule} /bin/sh -c ${shQuote(script)} >>${logFile} 2>&1 # tether:${id}`.replace(/%/g, '\\%');
  return e.enabled ? line : `#disabled ${line}`;
}

interface Meta {
  name: string;
  command: string;
  schedule: string;
  enabled: boolean;
}

export interface ParsedCrontab {
  lines: string[];
  entries: Map<string, { meta: Meta; metaLine: number; jobLine: number | undefined }>;
  untagged: number;
}

export function parseCrontab(text: string): ParsedCrontab {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const entries: ParsedCrontab['entries'] = new Map();
  const ours = new Set<number>();
  lines.forEach((line, i) => {
    const m = META.exec(line);
    if (m) {
      try {
        const meta = JSON.parse(m[2]!) as Meta;
        if (typeof meta.command === 'string' && typeof meta.schedule === 'string') {
          entries.set(m[1]!, { meta: { name: String(meta.name ?? ''), command: meta.command, schedule: meta.schedule, enabled: meta.enabled !== false }, metaLine: i, jobLine: undefined });
          ours.add(i);
        }
      } catch {
        /* not ours after all: left alone */
      }
    }
  });
  lines.forEach((line, i) => {
    const m = JOB_TAG.exec(line);
    const e = m ? entries.get(m[1]!) : undefined;
    if (e && e.jobLine === undefined && i === e.metaLine + 1) {
      e.jobLine = i;
      ours.add(i);
    }
  });
  const untagged = lines.filter((l, i) => !ours.has(i) && l.trim() !== '').length;
  return { lines, entries, untagged };
}

/** Reads the run log: runs oldest first, each with its output (bounded) and exit code once ended. */
export function parseRuns(text: string): CronRun[] {
  const runs: CronRun[] = [];
  let cur: { startedAt: number; out: string[]; size: number; truncated: boolean } | undefined;
  const close = (endedAt?: number, exitCode?: number) => {
    if (!cur) return;
    let output = cur.out.join('\n');
    let truncated = cur.truncated;
    if (output.length > MAX_RUN_OUTPUT) {
      output = output.slice(-MAX_RUN_OUTPUT);
      truncated = true;
    }
    runs.push({ startedAt: cur.startedAt, ...(endedAt !== undefined ? { endedAt } : {}), ...(exitCode !== undefined ? { exitCode } : {}), output, truncated });
    cur = undefined;
  };
  for (const line of text.split('\n')) {
    const s = /^@@tether start (\d+)$/.exec(line);
    if (s) {
      close();
      cur = { startedAt: Number(s[1]) * 1000, out: [], size: 0, truncated: false };
      continue;
    }
    const x = /^@@tether exit (\d+) (\d+)$/.exec(line);
    if (x && cur) {
      close(Number(x[2]) * 1000, Number(x[1]));
      continue;
    }
    if (cur) {
      cur.size += line.length + 1;
      if (cur.size <= 4 * MAX_RUN_OUTPUT) cur.out.push(line);
      else cur.truncated = true;
    }
  }
  close();
  return runs.slice(-50);
}

export class CronService {
  private unserve: (() => void) | undefined;
  /** one change at a time per crontab: read, edit, write back */
  private chain = new Map<string, Promise<unknown>>();

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: CronConfig,
    private readonly log: Logger,
  ) {}

  start(): this {
    this.unserve = serve(this.link, 'cron.request', 'cron.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  async handle(req: CronRequestBody): Promise<CronResponseBody> {
    if (!this.cfg.capabilities.includes('cron')) return refusal('cron', this.cfg.capabilities);
    if (req.op === 'validate') {
      if (!req.entry?.schedule) throw new ManagerFailure('bad_request', 'validate needs entry.schedule');
      return { ok: true, nextRuns: checkSchedule(req.entry.schedule).nextRuns };
    }
    // A bad schedule is refused before the crontab is read: the answer does not depend on it.
    if ((req.op === 'create' || req.op === 'update') && req.entry?.schedule !== undefined) checkSchedule(req.entry.schedule);
    const user = req.user ?? 'root';
    const uid = this.uidOf(user);
    const prev = this.chain.get(user) ?? Promise.resolve();
    const next = prev.then(() => this.op(req, user, uid), () => this.op(req, user, uid));
    this.chain.set(user, next.catch(() => {}));
    return next;
  }

  private uidOf(user: string): { uid: number; gid: number } {
    const passwd = readFileSync(join(this.cfg.etcRoot ?? '/etc', 'passwd'), 'utf8');
    for (const line of passwd.split('\n')) {
      const f = line.split(':');
      if (f[0] === user) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
    throw new ManagerFailure('not_found', `no user ${user} on this host`);
  }

  private async read(user: string): Promise<ParsedCrontab> {
    const r = await run('crontab', ['-u', user, '-l'], { timeoutMs: 15_000 });
    if (r.code !== 0) {
      if (/no crontab for/i.test(r.stderr)) return parseCrontab('');
      throw new ManagerFailure('failed', `crontab -l for ${user}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
    }
    return parseCrontab(r.stdout);
  }

  private async write(user: string, lines: string[]): Promise<void> {
    const r = await run('crontab', ['-u', user, '-'], { input: lines.join('\n') + '\n', timeoutMs: 15_000 });
    if (r.code !== 0) throw new ManagerFailure('failed', `crontab for ${user}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  }

  private logFile(user: string, id: string): string {
    return join(this.cfg.cronLogDir, `${user}-${id}.log`);
  }

  /** The log file exists and belongs to the crontab's user, who appends to it from cron. */
  private prepareLog(user: string, id: string, owner: { uid: number; gid: number }): string {
    const file = this.logFile(user, id);
    mkdirSync(this.cfg.cronLogDir, { recursive: true, mode: 0o755 });
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o640));
    try {
      chownSync(file, owner.uid, owner.gid);
    } catch {
      /* not root: only our own crontab can be managed anyway */
    }
    return file;
  }

  private runs(user: string, id: string): CronRun[] {
    const file = this.logFile(user, id);
    let text: string;
    try {
      const size = statSync(file).size;
      text = readFileSync(file, 'utf8');
      if (size > MAX_LOG) {
        // Keep the newest part, from a run boundary; cron appends, the agent trims.
        const tail = text.slice(-KEEP_LOG);
        const at = tail.indexOf('@@tether start ');
        text = at >= 0 ? tail.slice(at) : tail;
        writeFileSync(file, text);
      }
    } catch {
      return [];
    }
    return parseRuns(text);
  }

  private view(user: string, id: string, meta: Meta): CronEntry {
    const last = this.runs(user, id).at(-1);
    let next: number[] = [];
    if (meta.enabled) {
      try {
        next = checkSchedule(meta.schedule).nextRuns;
      } catch {
        next = [];
      }
    }
    return { id, user, name: meta.name.slice(0, 128), schedule: meta.schedule.slice(0, 128), command: meta.command.slice(0, 4096), enabled: meta.enabled, nextRuns: next, ...(last ? { lastRun: last } : {}) };
  }

  private async op(req: CronRequestBody, user: string, owner: { uid: number; gid: number }): Promise<CronResponseBody> {
    const tab = await this.read(user);
    const need = () => {
      if (!req.id) throw new ManagerFailure('bad_request', `${req.op} needs an id`);
      const e = tab.entries.get(req.id);
      if (!e) throw new ManagerFailure('not_found', `no Tether cron entry ${req.id} in ${user}'s crontab`);
      return e;
    };
    switch (req.op) {
      case 'list':
        return { ok: true, entries: [...tab.entries].slice(0, 1000).map(([id, e]) => this.view(user, id, e.meta)), untagged: tab.untagged };
      case 'runs': {
        need();
        return { ok: true, runs: this.runs(user, req.id!) };
      }
      case 'create': {
        const input = req.entry ?? {};
        if (!input.schedule || !input.command) throw new ManagerFailure('bad_request', 'create needs entry.schedule and entry.command');
        const meta = this.checked({ schedule: input.schedule, command: input.command, name: input.name ?? '', enabled: input.enabled ?? true });
        const id = randomBytes(6).toString('hex');
        const file = this.prepareLog(user, id, owner);
        const lines = [...tab.lines, metaLine(id, meta), jobLine(id, meta, file)];
        await this.write(user, lines);
        this.log.info({ op: 'create', user, id, schedule: meta.schedule }, 'cron entry created');
        return { ok: true, entry: this.view(user, id, meta) };
      }
      case 'update': {
        const e = need();
        const input: Partial<CronEntryInput> = req.entry ?? {};
        const meta = this.checked({ ...e.meta, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as Meta);
        const id = req.id!;
        const file = this.prepareLog(user, id, owner);
        const lines = [...tab.lines];
        lines[e.metaLine] = metaLine(id, meta);
        const job = jobLine(id, meta, file);
        if (e.jobLine !== undefined) lines[e.jobLine] = job;
        else lines.splice(e.metaLine + 1, 0, job);
        await this.write(user, lines);
        this.log.info({ op: 'update', user, id, enabled: meta.enabled }, 'cron entry updated');
        return { ok: true, entry: this.view(user, id, meta) };
      }
      case 'delete': {
        const e = need();
        const drop = new Set([e.metaLine, ...(e.jobLine !== undefined ? [e.jobLine] : [])]);
        await this.write(user, tab.lines.filter((_, i) => !drop.has(i)));
        this.log.info({ op: 'delete', user, id: req.id }, 'cron entry deleted');
        return { ok: true };
      }
      default:
        throw new ManagerFailure('bad_request', `unknown cron operation ${JSON.stringify(req.op)}`);
    }
  }

  private checked(m: Meta): Meta {
    checkSchedule(m.schedule);
    if (/[\n\r\0]/.test(m.command) || !m.command.trim()) throw new ManagerFailure('bad_request', 'a cron command is one non-empty line');
    if (/[\n\r\0]/.test(m.name)) throw new ManagerFailure('bad_request', 'a name is one line');
    return { name: m.name, command: m.command, schedule: m.schedule.trim().replace(/\s+/g, ' '), enabled: m.enabled };
  }
}

function metaLine(id: string, m: Meta): string {
  return `# tether:${id} ${JSON.stringify({ name: m.name, schedule: m.schedule, command: m.command, enabled: m.enabled })}`;
}
