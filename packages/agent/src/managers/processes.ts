/**
 * Processes and ports (capability `process`): the processes collector's fields for (nearly) every
 * process, a signal to one pid, which process listens on which port, and a process's environment.
 * Read from /proc directly, as the collectors do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Capability, ListeningPort, ProcessRequestBody, ProcessResponseBody, ProcessRow } from '@tether/protocol';
import { processesCollector } from '../collectors/index.js';
import type { CmdlineMode } from '../collectors/redact.js';
import { Slicer, SocketOwners, UserNames, parsePidStat, readInetTable, readText } from '../collectors/util.js';
import { ManagerFailure, refusal, serve, type ManagerLink } from './common.js';

export interface ProcessConfig {
  capabilities: Capability[];
  /** how command lines are reported (the agent's process_cmdline); default redacted */
  processCmdline?: CmdlineMode;
  procRoot?: string;
  etcRoot?: string;
}

/** `KEY=value\0…` → an object; bounded. */
export function parseEnviron(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const item of buf.toString('utf8').split('\0')) {
    const i = item.indexOf('=');
    if (i <= 0 || i > 256) continue;
    out[item.slice(0, i)] = item.slice(i + 1, i + 1 + 32768);
    if (++n >= 1024) break;
  }
  return out;
}

export class ProcessService {
  private unserve: (() => void) | undefined;
  private readonly procRoot: string;
  private readonly collector;
  private lastCollect = 0;
  private readonly users: UserNames;

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: ProcessConfig,
    private readonly log: Logger,
  ) {
    this.procRoot = cfg.procRoot ?? '/proc';
    const roots = { procRoot: this.procRoot, sysRoot: '/sys', etcRoot: cfg.etcRoot ?? '/etc', utmpPath: '/var/run/utmp' };
    // Top 500 by CPU and 500 by memory, merged: every process on an ordinary host.
    this.collector = processesCollector(roots, { topN: 500, maxCommandLength: 4096, ...(cfg.processCmdline ? { cmdline: cfg.processCmdline } : {}) });
    this.users = new UserNames(roots.etcRoot);
  }

  start(): this {
    this.unserve = serve(this.link, 'process.request', 'process.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  async handle(req: ProcessRequestBody): Promise<ProcessResponseBody> {
    if (!this.cfg.capabilities.includes('process')) return refusal('process', this.cfg.capabilities);
    switch (req.op) {
      case 'list':
        return this.list();
      case 'signal':
        return this.signal(req);
      case 'ports':
        return { ok: true, ports: await this.ports(req.port) };
      case 'environ': {
        if (req.self) return { ok: true, env: parseEnviron(Buffer.from(Object.entries(process.env).map(([k, v]) => `${k}=${v}`).join('\0'))) };
        if (!req.pid) throw new ManagerFailure('bad_request', 'environ needs a pid (or self)');
        let buf: Buffer;
        try {
          buf = readFileSync(join(this.procRoot, String(req.pid), 'environ'));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') throw new ManagerFailure('not_found', `no process ${req.pid}`);
          if (code === 'EACCES' || code === 'EPERM') throw new ManagerFailure('permission', `the agent may not read process ${req.pid}'s environment`);
          throw err;
        }
        return { ok: true, env: parseEnviron(buf) };
      }
      default:
        throw new ManagerFailure('bad_request', `unknown process operation ${JSON.stringify((req as { op: string }).op)}`);
    }
  }

  private async list(): Promise<ProcessResponseBody> {
    // CPU % needs two samples: take a second one shortly after when the last is old.
    if (Date.now() - this.lastCollect > 10_000) {
      await this.collector.collect(Date.now());
      await new Promise((r) => setTimeout(r, 300));
    }
    this.lastCollect = Date.now();
    const s = await this.collector.collect(this.lastCollect);
    if (!s) throw new ManagerFailure('failed', 'reading /proc failed');
    const processes: ProcessRow[] = s.processes
      .map((p) => ({
        pid: p.pid,
        ppid: p.ppid,
        user: p.user,
        state: p.state,
        name: p.name,
        command: p.command,
        startTime: p.startTime,
        ...(p.cpuPercent !== undefined ? { cpuPercent: p.cpuPercent } : {}),
        rssBytes: p.rssBytes,
        memPercent: p.memPercent,
        threads: p.threads,
        listenPorts: p.listenPorts,
      }))
      .sort((a, b) => a.pid - b.pid);
    return { ok: true, processes, total: s.totals.processes };
  }

  private async signal(req: ProcessRequestBody): Promise<ProcessResponseBody> {
    const pid = req.pid;
    if (!pid || !Number.isInteger(pid) || pid < 1) throw new ManagerFailure('bad_request', 'signal needs a pid');
    if (!req.signal) throw new ManagerFailure('bad_request', 'signal needs a signal name');
    // pid 1 is init: a signal there takes the whole host with it; the agent's own pid ends the agent.
    if (pid === 1) throw new ManagerFailure('bad_request', 'refusing to signal pid 1 (init); use power for a reboot');
    if (pid === process.pid) throw new ManagerFailure('bad_request', 'refusing to signal the agent itself');
    try {
      process.kill(pid, req.signal);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ESRCH') throw new ManagerFailure('not_found', `no process ${pid} on this host`);
      if (code === 'EPERM') throw new ManagerFailure('permission', `the agent may not signal process ${pid}`);
      throw err;
    }
    const stat = readText(join(this.procRoot, String(pid), 'stat'), 'latin1', 'once');
    this.log.info({ pid, signal: req.signal, name: stat ? parsePidStat(stat)?.name : undefined }, 'signal sent');
    return { ok: true };
  }

  /** Listening TCP sockets and bound UDP sockets, with the process that holds each. */
  private async ports(only?: number): Promise<ListeningPort[]> {
    const now = Date.now();
    const sockets = (await readInetTable(this.procRoot, new Slicer())).listening.filter((s) => only === undefined || s.localPort === only);
    const owners = await new SocketOwners(this.procRoot, 0).get(sockets.map((s) => s.inode), now);
    const out: ListeningPort[] = [];
    for (const s of sockets.slice(0, 4096)) {
      const pid = owners.get(s.inode);
      const stat = pid ? readText(join(this.procRoot, String(pid), 'stat'), 'latin1', 'once') : undefined;
      const name = stat ? parsePidStat(stat)?.name : undefined;
      out.push({
        proto: s.proto,
        address: s.localAddress.slice(0, 64),
        port: s.localPort,
        ...(pid ? { pid } : {}),
        ...(name ? { process: name.slice(0, 64) } : {}),
        user: this.users.name(s.uid, now).slice(0, 64),
      });
    }
    return out.sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  }
}
