/**
 * Web terminals: relays a browser's WebSocket to a pty on a host through the agent link, with
 * flow control end to end (the agent is acknowledged only for output the browser's socket has
 * taken), and records every session as asciicast v2 (output and input, with timings) under
 * `<data>/recordings/`, bounded by size and pruned by age. Owns `terminal_sessions`.
 */
import { systemClock, type Clock } from '../../clock.js';
import type { Scheduler } from '../../scheduler.js';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { BodyOf, Message } from '@tether/protocol';
import type { ModuleMigrations } from '../../db/migrate.js';
import type { AgentPort, AgentReach } from '../agents/link.js';

interface SessionsTable {
  id: string;
  host_id: string;
  hostname: string;
  username: string;
  run_as: string | null;
  started_at: number;
  ended_at: number | null;
  exit_code: number | null;
  reason: string | null;
  bytes_out: number;
  bytes_in: number;
  recording_bytes: number;
  recording_truncated: number;
  cols: number;
  rows: number;
}
interface Tables {
  terminal_sessions: SessionsTable;
}

export const terminalMigrations: ModuleMigrations = {
  '0020_terminal_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('terminal_sessions')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('hostname', 'varchar(253)', (c) => c.notNull())
        .addColumn('username', 'varchar(128)', (c) => c.notNull())
        .addColumn('run_as', 'varchar(64)')
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('exit_code', 'integer')
        .addColumn('reason', 'text')
        .addColumn('bytes_out', 'bigint', (c) => c.notNull())
        .addColumn('bytes_in', 'bigint', (c) => c.notNull())
        .addColumn('recording_bytes', 'bigint', (c) => c.notNull())
        .addColumn('recording_truncated', 'integer', (c) => c.notNull())
        .addColumn('cols', 'integer', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('terminal_sessions_started').on('terminal_sessions').columns(['started_at']).execute();
    },
  },
};

export interface TerminalSession {
  id: string;
  hostId: string;
  hostname: string;
  username: string;
  runAs: string | null;
  startedAt: number;
  endedAt: number | null;
  exitCode: number | null;
  reason: string | null;
  bytesOut: number;
  bytesIn: number;
  recordingBytes: number;
  recordingTruncated: boolean;
  cols: number;
  rows: number;
}

const toSession = (r: SessionsTable): TerminalSession => ({
  id: r.id,
  hostId: r.host_id,
  hostname: r.hostname,
  username: r.username,
  runAs: r.run_as,
  startedAt: Number(r.started_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
  exitCode: r.exit_code,
  reason: r.reason,
  bytesOut: Number(r.bytes_out),
  bytesIn: Number(r.bytes_in),
  recordingBytes: Number(r.recording_bytes),
  recordingTruncated: r.recording_truncated === 1,
  cols: r.cols,
  rows: r.rows,
});

export interface TerminalOptions {
  /** recording bytes kept per session (default 16 MiB); past it the recording stops, marked */
  recordingMaxBytes?: number;
  /** recordings older than this are deleted (default 90 days) */
  retentionMs?: number;
  /** browser output not yet written to its socket, beyond which the agent is not acknowledged (default 1 MiB) */
  browserBufferBytes?: number;
  /** the hub's clock: session times and recording retention follow it */
  clock?: Clock;
}

interface Live {
  s: TerminalSession;
  conn: AgentPort;
  browser: WebSocket;
  rec: WriteStream;
  /** performance.now() at the start: recording offsets are real elapsed time, whatever the wall clock does */
  t0: number;
  /** output received from the agent and not yet acknowledged back */
  pendingAck: number;
  opened: boolean;
  onEnd: (s: TerminalSession) => void;
}

export class TerminalService {
  private readonly db: Kysely<Tables>;
  readonly dir: string;
  private readonly live = new Map<string, Live>();
  private readonly clock: Clock;

  constructor(
    db: Kysely<any>,
    dataDir: string,
    private readonly link: AgentReach,
    private readonly log: Logger,
    private readonly o: TerminalOptions = {},
  ) {
    this.clock = o.clock ?? systemClock;
    this.db = db as Kysely<Tables>;
    this.dir = join(dataDir, 'recordings');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    link.on('message', (conn, msg) => this.onAgent(conn, msg));
    link.on('offline', (agentId) => {
      for (const [id, l] of this.live) if (l.s.hostId === agentId) void this.finish(id, null, 'the host disconnected');
    });
  }

  /** Prunes recordings past their retention every hour of the hub's clock. */
  start(scheduler: Scheduler): void {
    scheduler.every('terminal.prune', 3600_000, (now) => this.prune(now).then(() => {}));
  }

  recordingPath(id: string): string {
    return join(this.dir, `${id}.cast`);
  }

  get openCount(): number {
    return this.live.size;
  }

  /**
   * Opens a session on `conn`'s host for `browser`. Browser frames (JSON): in `{type:'input', data}`,
   * `{type:'resize', cols, rows}`; out `{type:'opened', …}`, `{type:'output', data}`, `{type:'exit', …}`.
   */
  async open(o: { conn: AgentPort; hostname: string; username: string; browser: WebSocket; cols: number; rows: number; runAs?: string; onEnd: (s: TerminalSession) => void; takeEarly?: () => string[] }): Promise<TerminalSession> {
    const now = this.clock.now();
    const s: TerminalSession = {
      id: 'ts_' + randomBytes(12).toString('base64url'),
      hostId: o.conn.agentId,
      hostname: o.hostname,
      username: o.username,
      runAs: o.runAs ?? null,
      startedAt: now,
      endedAt: null,
      exitCode: null,
      reason: null,
      bytesOut: 0,
      bytesIn: 0,
      recordingBytes: 0,
      recordingTruncated: false,
      cols: o.cols,
      rows: o.rows,
    };
    await this.db
      .insertInto('terminal_sessions')
      .values({ id: s.id, host_id: s.hostId, hostname: s.hostname, username: s.username, run_as: s.runAs, started_at: now, ended_at: null, exit_code: null, reason: null, bytes_out: 0, bytes_in: 0, recording_bytes: 0, recording_truncated: 0, cols: s.cols, rows: s.rows })
      .execute();
    const rec = createWriteStream(this.recordingPath(s.id), { mode: 0o600 });
    const l: Live = { s, conn: o.conn, browser: o.browser, rec, t0: performance.now(), pendingAck: 0, opened: false, onEnd: o.onEnd };
    this.live.set(s.id, l);
    this.write(l, JSON.stringify({ version: 2, width: o.cols, height: o.rows, timestamp: Math.floor(now / 1000), title: `${o.username}@${o.hostname}`, env: { TERM: 'xterm-256color' } }) + '\n');
    o.browser.on('message', (raw) => this.onBrowser(l, raw.toString()));
    o.browser.on('close', () => void this.finish(s.id, null, 'the browser closed the terminal'));
    o.conn.send('term.open', { sessionId: s.id, cols: o.cols, rows: o.rows, ...(o.runAs ? { user: o.runAs } : {}) });
    // Frames the browser sent while the session was being set up, in order, after the open.
    for (const raw of o.takeEarly?.() ?? []) this.onBrowser(l, raw);
    return s;
  }

  private event(l: Live, kind: 'o' | 'i' | 'r', data: string): void {
    this.write(l, JSON.stringify([Number(((performance.now() - l.t0) / 1000).toFixed(6)), kind, data]) + '\n');
  }

  private write(l: Live, line: string): void {
    if (l.s.recordingTruncated) return;
    const max = this.o.recordingMaxBytes ?? 16 * 1024 * 1024;
    const n = Buffer.byteLength(line);
    if (l.s.recordingBytes + n > max) {
      l.s.recordingTruncated = true;
      const marker = JSON.stringify([Number(((performance.now() - l.t0) / 1000).toFixed(6)), 'o', `\r\n[tether: recording stopped at ${max} bytes]\r\n`]) + '\n';
      l.rec.write(marker);
      l.s.recordingBytes += Buffer.byteLength(marker);
      return;
    }
    l.rec.write(line);
    l.s.recordingBytes += n;
  }

  private onBrowser(l: Live, raw: string): void {
    let m: { type?: string; data?: unknown; cols?: unknown; rows?: unknown };
    try {
      m = JSON.parse(raw) as typeof m;
    } catch {
      return;
    }
    if (m.type === 'input' && typeof m.data === 'string' && m.data.length > 0 && m.data.length <= 64 * 1024) {
      l.s.bytesIn += Buffer.byteLength(m.data);
      this.event(l, 'i', m.data);
      l.conn.send('term.input', { sessionId: l.s.id, data: m.data });
    } else if (m.type === 'resize' && Number.isInteger(m.cols) && Number.isInteger(m.rows)) {
      const cols = Math.min(1000, Math.max(2, m.cols as number));
      const rows = Math.min(500, Math.max(2, m.rows as number));
      this.event(l, 'r', `${cols}x${rows}`);
      l.conn.send('term.resize', { sessionId: l.s.id, cols, rows });
    }
  }

  private toBrowser(l: Live, msg: object): void {
    if (l.browser.readyState === l.browser.OPEN) l.browser.send(JSON.stringify(msg));
  }

  private onAgent(conn: AgentPort, msg: Message): void {
    if (!msg.type.startsWith('term.')) return;
    const b = msg.body as { sessionId: string };
    const l = this.live.get(b.sessionId);
    // Not a session of this agent's. By id, not by object: in a cluster the frames of an agent held
    // by another hub come through a port made for each.
    if (!l || l.conn.agentId !== conn.agentId) return;
    switch (msg.type) {
      case 'term.opened': {
        const o = msg.body as BodyOf<'term.opened'>;
        l.opened = true;
        this.toBrowser(l, { type: 'opened', sessionId: l.s.id, user: o.user, shell: o.shell, pid: o.pid });
        return;
      }
      case 'term.output': {
        const o = msg.body as BodyOf<'term.output'>;
        const bytes = Buffer.byteLength(o.data);
        l.s.bytesOut += bytes;
        this.event(l, 'o', o.data);
        if (l.browser.readyState !== l.browser.OPEN) return;
        // Acknowledge only once the browser's socket has taken it: a slow browser holds the shell back.
        l.browser.send(JSON.stringify({ type: 'output', data: o.data }), () => {
          if (this.live.has(l.s.id)) l.conn.send('term.ack', { sessionId: l.s.id, bytes });
        });
        return;
      }
      case 'term.exit': {
        const e = msg.body as BodyOf<'term.exit'>;
        void this.finish(l.s.id, e.exitCode, e.reason ?? (e.signal ? `signal ${e.signal}` : 'the shell exited'), e.refused === true);
        return;
      }
    }
  }

  /** Ends a session once: tells the agent and the browser, closes the recording, writes the record. */
  private async finish(id: string, exitCode: number | null, reason: string, refused = false): Promise<void> {
    const l = this.live.get(id);
    if (!l) return;
    this.live.delete(id);
    l.s.endedAt = this.clock.now();
    l.s.exitCode = exitCode;
    l.s.reason = reason;
    l.conn.send('term.close', { sessionId: id });
    this.toBrowser(l, { type: 'exit', exitCode, reason, refused });
    if (l.browser.readyState === l.browser.OPEN) l.browser.close(refused ? 4403 : 1000, reason.slice(0, 120));
    await new Promise<void>((r) => l.rec.end(() => r()));
    await this.db
      .updateTable('terminal_sessions')
      .set({ ended_at: l.s.endedAt, exit_code: exitCode, reason, bytes_out: l.s.bytesOut, bytes_in: l.s.bytesIn, recording_bytes: l.s.recordingBytes, recording_truncated: l.s.recordingTruncated ? 1 : 0 })
      .where('id', '=', id)
      .execute()
      .catch((err: Error) => this.log.error({ err: err.message }, 'terminal session record failed'));
    this.log.info({ sessionId: id, hostId: l.s.hostId, user: l.s.username, reason }, 'terminal ended');
    l.onEnd(l.s);
  }

  async list(limit = 100, hostId?: string): Promise<TerminalSession[]> {
    let q = this.db.selectFrom('terminal_sessions').selectAll().orderBy('started_at', 'desc').limit(limit);
    if (hostId) q = q.where('host_id', '=', hostId);
    return (await q.execute()).map((r) => this.liveView(toSession(r)));
  }

  async get(id: string): Promise<TerminalSession | undefined> {
    const r = await this.db.selectFrom('terminal_sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.liveView(toSession(r)) : undefined;
  }

  private liveView(s: TerminalSession): TerminalSession {
    return this.live.get(s.id)?.s ?? s;
  }

  async prune(now = this.clock.now()): Promise<number> {
    const cutoff = now - (this.o.retentionMs ?? 90 * 86400_000);
    const old = await this.db.selectFrom('terminal_sessions').select('id').where('started_at', '<', cutoff).execute();
    for (const { id } of old) rmSync(this.recordingPath(id), { force: true });
    await this.db.deleteFrom('terminal_sessions').where('started_at', '<', cutoff).execute();
    return old.length;
  }

  async close(): Promise<void> {
    for (const id of [...this.live.keys()]) await this.finish(id, null, 'hub shutting down');
  }
}
