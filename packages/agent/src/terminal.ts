/**
 * Terminals (capability `terminal`): a pty running the user's login shell, its output streamed to
 * the hub with a credit window (the pty is paused while TERMINAL_WINDOW_BYTES are unacknowledged),
 * input and resizes from the hub, an idle timeout, and a clean end when either side goes.
 * node-pty is loaded only when a terminal is opened, so agents that never open one never load it.
 */
import { StringDecoder } from 'node:string_decoder';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { TERMINAL_WINDOW_BYTES, type BodyOf, type Capability, type Message } from '@tether/protocol';
import type { Agent } from './agent.js';
import { groupsOf, lookupUser } from './accounts.js';
import { DEFAULT_PATH } from './tasks/runner.js';
import { scopeArgs, scopesFor, scopeUnitName } from './tasks/scope.js';

interface Pty {
  pid: number;
  write(data: string): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
  pause(): void;
  resume(): void;
  onData(cb: (d: string) => void): { dispose(): void };
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): { dispose(): void };
}

interface Session {
  pty: Pty;
  seq: number;
  unacked: number;
  paused: boolean;
  idle: NodeJS.Timeout;
  ended: boolean;
}

export interface TerminalOptions {
  capabilities: readonly Capability[];
  /**
   * The accounts a terminal may run as (`terminal_users`, the local config: the hub cannot widen it);
   * the first is the default. Empty: the agent's own user by default, any user the hub names.
   */
  users?: readonly string[];
  /** close a session with no input or output for this long (default 30 min) */
  idleMs?: number;
  /** sessions at once (default 16) */
  maxSessions?: number;
}

/** Input held for a session whose pty is still being spawned (bytes); more than this is dropped. */
const PENDING_INPUT_BYTES = 256 * 1024;

interface Pending {
  /** term.input / term.resize that arrived before the pty existed, in order */
  queued: Message[];
  bytes: number;
  /** why to end it once it is up: a close from the hub, or the hub connection dropping */
  closed: string | null;
}

export class TerminalService {
  private readonly sessions = new Map<string, Session>();
  /** sessions being opened: the hub sends input right after term.open, before the pty is up */
  private readonly pending = new Map<string, Pending>();
  private ptyModule: Promise<{ spawn: (file: string, args: string[], o: Record<string, unknown>) => Pty }> | undefined;

  constructor(
    private readonly agent: Agent,
    private readonly log: Logger,
    private readonly o: TerminalOptions,
  ) {
    agent.on('message', (m) => this.onMessage(m));
    // The hub that asked for a terminal is gone: end its sessions rather than leave shells behind.
    agent.on('disconnected', () => {
      for (const id of [...this.sessions.keys()]) this.end(id, 'the hub connection dropped');
      for (const p of this.pending.values()) p.closed ??= 'the hub connection dropped';
    });
  }

  get count(): number {
    return this.sessions.size;
  }

  private exit(sessionId: string, reason: string, refused = false): void {
    this.agent.send('term.exit', { sessionId, exitCode: null, signal: null, reason, ...(refused ? { refused: true } : {}) });
  }

  private onMessage(msg: Message): void {
    if (msg.type !== 'term.open' && msg.type.startsWith('term.')) {
      const p = this.pending.get((msg.body as { sessionId: string }).sessionId);
      if (p) return this.hold(p, msg);
    }
    switch (msg.type) {
      case 'term.open':
        void this.open(msg.body as BodyOf<'term.open'>);
        return;
      case 'term.input': {
        const b = msg.body as BodyOf<'term.input'>;
        const s = this.sessions.get(b.sessionId);
        if (!s) return;
        this.touch(b.sessionId, s);
        s.pty.write(b.data);
        return;
      }
      case 'term.ack': {
        const b = msg.body as BodyOf<'term.ack'>;
        const s = this.sessions.get(b.sessionId);
        if (!s) return;
        s.unacked = Math.max(0, s.unacked - b.bytes);
        if (s.paused && s.unacked < TERMINAL_WINDOW_BYTES / 2) {
          s.paused = false;
          s.pty.resume();
        }
        return;
      }
      case 'term.resize': {
        const b = msg.body as BodyOf<'term.resize'>;
        const s = this.sessions.get(b.sessionId);
        if (s) s.pty.resize(b.cols, b.rows);
        return;
      }
      case 'term.close':
        this.end((msg.body as BodyOf<'term.close'>).sessionId, 'closed by the hub');
        return;
    }
  }

  /** Keeps a message for a session still being opened, bounded; a close is remembered, not queued. */
  private hold(p: Pending, msg: Message): void {
    if (msg.type === 'term.close') {
      p.closed ??= 'closed by the hub';
      return;
    }
    if (msg.type === 'term.input') {
      const n = Buffer.byteLength((msg.body as BodyOf<'term.input'>).data);
      if (p.bytes + n > PENDING_INPUT_BYTES) return;
      p.bytes += n;
    } else if (msg.type !== 'term.resize') return;
    p.queued.push(msg);
  }

  private async open(b: BodyOf<'term.open'>): Promise<void> {
    // The capability lock: the local configuration decides, never the hub.
    if (!this.o.capabilities.includes('terminal')) {
      this.log.warn({ sessionId: b.sessionId }, 'refused a terminal: terminal is not among this agent’s capabilities');
      return this.exit(b.sessionId, `this agent does not allow terminal (capabilities = [${this.o.capabilities.join(', ')}] in its local config)`, true);
    }
    if (this.sessions.has(b.sessionId) || this.pending.has(b.sessionId)) return;
    const p: Pending = { queued: [], bytes: 0, closed: null };
    this.pending.set(b.sessionId, p);
    try {
      await this.spawn(b);
    } finally {
      this.pending.delete(b.sessionId);
    }
    if (!this.sessions.has(b.sessionId)) return;
    // What the hub sent while the pty was starting, in order; then a close, if one came.
    for (const m of p.queued) this.onMessage(m);
    if (p.closed) this.end(b.sessionId, p.closed);
  }

  private async spawn(b: BodyOf<'term.open'>): Promise<void> {
    if (this.sessions.size + this.pending.size - 1 >= (this.o.maxSessions ?? 16)) return this.exit(b.sessionId, `too many terminals open on this host (${this.sessions.size})`, true);
    const self = process.getuid?.() ?? 0;
    const allowed = this.o.users ?? [];
    const asked = b.user ?? allowed[0] ?? String(self);
    const u = lookupUser(asked);
    if (!u) return this.exit(b.sessionId, `no such user ${JSON.stringify(asked)} on this host`, true);
    if (allowed.length && !allowed.some((a) => a === u.name || a === String(u.uid))) {
      this.log.warn({ sessionId: b.sessionId, user: u.name }, 'refused a terminal: the user is not among terminal_users');
      return this.exit(b.sessionId, `this agent opens terminals only as ${allowed.join(', ')} (terminal_users in its local config), not as ${u.name}`, true);
    }
    if (u.uid !== self && self !== 0) return this.exit(b.sessionId, `a terminal as ${u.name} needs the agent to run as root`, true);
    const shell = u.shell && existsSync(u.shell) && !/(nologin|false)$/.test(u.shell) ? u.shell : '/bin/sh';
    const asUser = u.uid !== self;
    // In a scope of its own where the agent starts them (task_scopes): the agent's memory limit never
    // kills the shell and the shell cannot starve the agent. The pty is the agent's all the same, so
    // the shell still ends with the agent (a hangup when its pty closes).
    const scope = scopesFor(this.agent.cfg.taskScopes);
    const unit = scope ? scopeUnitName('terminal', b.sessionId) : undefined;
    const argv = scope ? [scope.systemdRun, ...scopeArgs({ unit: unit!, description: `Tether terminal ${b.sessionId} (${u.name})`, ...(asUser ? { uid: u.uid, gid: u.gid } : {}) }), shell, '-l'] : [shell, '-l'];
    let pty: Pty;
    try {
      this.ptyModule ??= import('node-pty') as never;
      const mod = await this.ptyModule;
      // node-pty (or systemd-run, in a scope) drops to the user's uid and gid but keeps the agent's
      // supplementary groups. The shell gets the user's own groups, as a login would: set for the
      // synchronous fork, then put back.
      const restore = asUser ? process.getgroups!() : undefined;
      if (restore) process.setgroups!(groupsOf(u));
      try {
        pty = mod.spawn(argv[0]!, argv.slice(1), {
          name: 'xterm-256color',
          cols: b.cols,
          rows: b.rows,
          cwd: existsSync(u.home) ? u.home : '/',
          // A clean environment: never the agent's own (it may hold its enrollment token).
          env: { PATH: DEFAULT_PATH, HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: shell, TERM: 'xterm-256color', LANG: 'C.UTF-8' },
          // systemd-run must ask PID 1 as root: it switches to the user itself.
          ...(asUser && !scope ? { uid: u.uid, gid: u.gid } : {}),
        });
      } finally {
        if (restore) process.setgroups!(restore);
      }
    } catch (err) {
      return this.exit(b.sessionId, `could not open a terminal: ${(err as Error).message}`, true);
    }
    const s: Session = { pty, seq: 0, unacked: 0, paused: false, idle: undefined as unknown as NodeJS.Timeout, ended: false };
    this.sessions.set(b.sessionId, s);
    this.touch(b.sessionId, s);
    const decoder = new StringDecoder('utf8');
    pty.onData((d) => {
      const text = typeof d === 'string' ? d : decoder.write(d as unknown as Buffer);
      if (!text) return;
      this.touch(b.sessionId, s);
      for (let i = 0; i < text.length; i += 128 * 1024) {
        const part = text.slice(i, i + 128 * 1024);
        s.unacked += Buffer.byteLength(part);
        this.agent.send('term.output', { sessionId: b.sessionId, seq: s.seq++, data: part });
      }
      if (!s.paused && s.unacked >= TERMINAL_WINDOW_BYTES) {
        s.paused = true;
        pty.pause(); // the hub has not taken the last window yet: stop reading the shell
      }
    });
    pty.onExit((e) => {
      if (s.ended) return;
      s.ended = true;
      clearTimeout(s.idle);
      this.sessions.delete(b.sessionId);
      this.agent.send('term.exit', { sessionId: b.sessionId, exitCode: e.exitCode, signal: e.signal ?? null });
      this.log.info({ sessionId: b.sessionId, exitCode: e.exitCode }, 'terminal ended');
    });
    this.agent.send('term.opened', { sessionId: b.sessionId, pid: pty.pid, shell, user: u.name });
    this.log.info({ sessionId: b.sessionId, user: u.name, pid: pty.pid, ...(unit ? { scope: `${unit}.scope` } : {}) }, 'terminal opened');
  }

  private touch(id: string, s: Session): void {
    clearTimeout(s.idle);
    s.idle = setTimeout(() => this.end(id, 'idle timeout'), this.o.idleMs ?? 30 * 60_000);
    s.idle.unref();
  }

  /** Ends a session: SIGHUP to the shell (as a closed terminal does), SIGKILL if it lingers. */
  private end(id: string, reason: string): void {
    const s = this.sessions.get(id);
    if (!s || s.ended) return;
    s.ended = true;
    clearTimeout(s.idle);
    this.sessions.delete(id);
    try {
      s.pty.kill('SIGHUP');
    } catch {
      /* already gone */
    }
    const pid = s.pty.pid;
    setTimeout(() => {
      try {
        process.kill(pid, 0);
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 2000).unref();
    this.agent.send('term.exit', { sessionId: id, exitCode: null, signal: null, reason });
    this.log.info({ sessionId: id, reason }, 'terminal closed');
  }

  close(): void {
    for (const id of [...this.sessions.keys()]) this.end(id, 'agent stopping');
  }
}
