/**
 * The hub's end of the agent link: handshake (challenge → hello → welcome | refused),
 * identity (Ed25519 signature over a one-time nonce; the hub stores only public keys),
 * heartbeats, and the registry of connected agents that every other module talks through.
 */
import { systemClock, type Clock } from '../../clock.js';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import {
  AGENT_TO_HUB,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  authPayload,
  decodeFrame,
  encodeFrame,
  newMessageId,
  newNonce,
  verifyPayload,
  type BodyOf,
  type HelloBody,
  type Message,
  type MessageType,
  type RefusalCode,
} from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import type { EnrollStore } from '../enroll/store.js';

export const CLOSE = {
  malformed: 4400,
  auth: 4401,
  revoked: 4403,
  timeout: 4408,
  conflict: 4409,
  shutdown: 1001,
  dead: 4410,
  /** this hub is draining (cluster): connect to another one of the cluster */
  draining: 4503,
} as const;

export interface AgentLinkOptions {
  hosts: HostStore;
  enroll: EnrollStore;
  log: Logger;
  hubVersion: string;
  heartbeatSec: number;
  handshakeTimeoutMs: number;
  maxFrameBytes?: number;
  /** the hub's clock: connect and last-seen times, enrollment-token expiry (liveness runs on real elapsed time) */
  clock?: Clock;
}

/** The agent is not connected (or left before it answered). */
export class AgentUnavailable extends Error {
  readonly code = 'agent_offline';
  constructor(readonly agentId: string) {
    super(`agent ${agentId} is not connected`);
  }
}
export class AgentTimeout extends Error {
  readonly code = 'agent_timeout';
  constructor(
    readonly agentId: string,
    ms: number,
  ) {
    super(`agent ${agentId} did not answer within ${Math.round(ms / 1000)} s`);
  }
}

export class AgentConnection {
  /** performance.now() of the last frame, ping or pong from the agent, and of the last ping sent */
  lastRecv: number;
  lastPing = 0;
  badFrames = 0;
  /** what the agent said it is in its hello */
  agentVersion = '';
  constructor(
    readonly agentId: string,
    readonly ws: WebSocket,
    readonly addr: string,
    /** performance.now() when it connected */
    readonly connectedAt: number,
  ) {
    this.lastRecv = connectedAt;
  }
  /** Sends and returns the message id, or undefined when the socket is no longer open. */
  send<T extends MessageType>(type: T, body: BodyOf<T>, re?: string): string | undefined {
    if (this.ws.readyState !== this.ws.OPEN) return undefined;
    const id = newMessageId();
    this.ws.send(encodeFrame(type, body, re ? { id, re } : { id }));
    return id;
  }
}

export interface LinkStats {
  handshakesOk: number;
  enrollments: number;
  refused: Partial<Record<RefusalCode, number>>;
  badFrames: number;
}

export interface AgentLinkEvents {
  online: [agentId: string];
  offline: [agentId: string, reason: string];
  /** `frame`: the message as received (validated JSON text), for keeping it without its object graph */
  message: [conn: AgentConnection, msg: Message, frame: string];
}

/**
 * "Reach agent X": what modules that ask an agent something (managers, files, host status) need,
 * wherever the agent is connected. `AgentLink` is the one-hub implementation (its own sockets);
 * `cluster/reach.ts` adds the agents other hubs of the cluster hold, over NATS request/reply.
 */
/** One agent as a module talks to it: a socket of this hub, or (in a cluster) one held by another hub. */
export type AgentPort = Pick<AgentConnection, 'agentId' | 'agentVersion' | 'send'>;

export interface AgentReach {
  /** connected to this hub or, in a cluster, to any hub */
  isOnline(agentId: string): boolean;
  /**
   * Sends to the agent wherever it is held (for the message kinds that may cross hubs: tasks,
   * terminals); the agent's answers come back as 'message' events of this reach.
   */
  port(agentId: string): AgentPort | undefined;
  readonly onlineCount: number;
  /** see AgentLink.request: rejects with AgentUnavailable at once when the agent is connected nowhere */
  request<T extends MessageType>(agentId: string, type: T, body: BodyOf<T>, timeoutMs: number): Promise<Message>;
  /** ends the agent's connection wherever it is (revocation, deletion); true when it was online */
  disconnect(agentId: string, code: RefusalCode, reason: string): boolean;
  on(event: 'online', fn: (agentId: string) => void): unknown;
  on(event: 'offline', fn: (agentId: string, reason: string) => void): unknown;
  /** messages from agents: this hub's own, and in a cluster those other hubs pass on for this hub's terminals */
  on(event: 'message', fn: (conn: AgentPort, msg: Message, frame: string) => void): unknown;
  off(event: 'online' | 'offline' | 'message', fn: (...a: any[]) => void): unknown;
}

export class AgentLink extends EventEmitter<AgentLinkEvents> implements AgentReach {
  private readonly conns = new Map<string, AgentConnection>();
  private readonly pendingSockets = new Set<WebSocket>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly flusher: NodeJS.Timeout;
  private closing = false;
  /** refuses new agents (a draining hub of a cluster): they go to another hub */
  draining = false;
  readonly stats: LinkStats = { handshakesOk: 0, enrollments: 0, refused: {}, badFrames: 0 };
  /** hub-clock time, for what is stored and what expires */
  private readonly now: () => number;
  private readonly maxFrame: number;

  constructor(private readonly o: AgentLinkOptions) {
    super();
    const clock = o.clock ?? systemClock;
    this.now = () => clock.now();
    this.maxFrame = o.maxFrameBytes ?? MAX_FRAME_BYTES;
    // One sweep for all connections instead of a timer each: 10,000 agents cost one timer. It runs
    // often and each connection's first ping is placed at a random point of the interval, so every
    // sweep pings a small slice of the fleet instead of all of it at once.
    const tick = Math.max(25, Math.min(250, Math.floor((o.heartbeatSec * 1000) / 4)));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.flusher = setInterval(() => void this.flushLastSeen(), Math.max(1000, o.heartbeatSec * 3000));
    this.sweeper.unref();
    this.flusher.unref();
  }

  isOnline(agentId: string): boolean {
    return this.conns.has(agentId);
  }
  get(agentId: string): AgentConnection | undefined {
    return this.conns.get(agentId);
  }
  port(agentId: string): AgentConnection | undefined {
    return this.conns.get(agentId);
  }
  onlineIds(): string[] {
    return [...this.conns.keys()];
  }
  get onlineCount(): number {
    return this.conns.size;
  }

  /** Takes a freshly upgraded socket through the handshake. */
  attach(ws: WebSocket, addr: string): void {
    if (this.closing) {
      ws.close(CLOSE.shutdown, 'hub shutting down');
      return;
    }
    if (this.draining) {
      ws.close(CLOSE.draining, 'hub draining');
      return;
    }
    this.pendingSockets.add(ws);
    const nonce = newNonce();
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        this.refuse(ws, addr, 'handshake_timeout', `no hello within ${Math.round(this.o.handshakeTimeoutMs / 1000)} s`, true, CLOSE.timeout);
      }
    }, this.o.handshakeTimeoutMs);
    ws.on('error', (err) => this.o.log.debug({ addr, err: err.message }, 'agent socket error'));
    ws.on('close', () => {
      clearTimeout(timer);
      this.pendingSockets.delete(ws);
    });
    ws.once('message', (data, isBinary) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void this.onHello(ws, addr, nonce, data as Buffer, isBinary).catch((err: Error) => {
        this.o.log.error({ addr, err: err.message }, 'handshake failed');
        this.refuse(ws, addr, 'internal', 'internal error during handshake', true, 1011);
      });
    });
    ws.send(encodeFrame('challenge', { nonce, protocol: PROTOCOL_VERSION, hubVersion: this.o.hubVersion }));
  }

  private refuse(ws: WebSocket, addr: string, code: RefusalCode, reason: string, retry: boolean, closeCode: number, agentId?: string): void {
    this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1;
    this.o.log.warn({ addr, code, agentId }, `agent refused: ${reason}`);
    if (ws.readyState === ws.OPEN) {
      ws.send(encodeFrame('refused', { code, reason, retry }));
      ws.close(closeCode, reason.slice(0, 120));
    }
  }

  private async onHello(ws: WebSocket, addr: string, nonce: string, data: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) return this.refuse(ws, addr, 'malformed', 'binary frame where hello was expected', false, CLOSE.malformed);
    const d = decodeFrame(data, this.maxFrame);
    if (!d.ok) return this.refuse(ws, addr, 'malformed', d.error, false, CLOSE.malformed);
    if (d.msg.type !== 'hello') return this.refuse(ws, addr, 'malformed', `expected hello, got ${d.msg.type}`, false, CLOSE.malformed);
    const hello = d.msg.body as HelloBody;
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.refuse(ws, addr, 'unsupported_protocol', `hub speaks protocol ${PROTOCOL_VERSION}, agent ${hello.protocol}`, false, CLOSE.malformed);
    }
    const now = this.now();
    let agentId: string;
    if (hello.agentId) {
      const host = await this.o.hosts.get(hello.agentId);
      if (!host) return this.refuse(ws, addr, 'unknown_agent', 'unknown agent id', false, CLOSE.auth, hello.agentId);
      if (host.revokedAt !== null) return this.refuse(ws, addr, 'revoked', 'agent revoked', false, CLOSE.revoked, hello.agentId);
      if (!verifyPayload(host.publicKey, authPayload(nonce, hello.agentId), hello.signature)) {
        return this.refuse(ws, addr, 'bad_signature', 'signature does not match the nonce of this connection and the key on record (bad key or replayed hello)', false, CLOSE.auth, hello.agentId);
      }
      agentId = host.id;
      if (this.conns.has(agentId)) return this.refuse(ws, addr, 'id_conflict', 'agent id conflict', true, CLOSE.conflict, agentId);
      await this.o.hosts.recordConnect(agentId, { facts: hello.facts, capabilities: hello.capabilities, agentVersion: hello.agentVersion, addr, now });
    } else if (hello.enrollToken) {
      if (!hello.publicKey) return this.refuse(ws, addr, 'malformed', 'enrollment needs publicKey', false, CLOSE.malformed);
      // Proof of key possession first, so a bad request cannot burn a single-use token.
      if (!verifyPayload(hello.publicKey, authPayload(nonce, hello.publicKey), hello.signature)) {
        return this.refuse(ws, addr, 'bad_signature', 'signature does not match the nonce of this connection and the public key presented', false, CLOSE.auth);
      }
      const t = await this.o.enroll.consume(hello.enrollToken, now);
      if (!t.ok) return this.refuse(ws, addr, t.code, t.reason, false, CLOSE.auth);
      const host = await this.o.hosts.create({
        facts: hello.facts,
        labels: t.token.labels,
        capabilities: hello.capabilities,
        publicKey: hello.publicKey,
        agentVersion: hello.agentVersion,
        enrolledBy: t.token.id,
        addr,
        now,
      });
      agentId = host.id;
      this.stats.enrollments++;
      this.o.log.info({ agentId, hostname: host.hostname, addr, tokenId: t.token.id }, 'agent enrolled');
    } else {
      return this.refuse(ws, addr, 'malformed', 'hello needs agentId or enrollToken', false, CLOSE.malformed);
    }
    if (ws.readyState !== ws.OPEN) return; // it left while we were checking
    // The conflict check and the registration happen in one synchronous step.
    if (this.conns.has(agentId)) return this.refuse(ws, addr, 'id_conflict', 'agent id conflict', true, CLOSE.conflict, agentId);
    // Liveness is real elapsed time (a wall-clock step or a test clock's jump drops nobody).
    const felt = performance.now();
    const conn = new AgentConnection(agentId, ws, addr, felt);
    conn.agentVersion = hello.agentVersion;
    conn.lastPing = felt - Math.random() * this.o.heartbeatSec * 1000;
    this.conns.set(agentId, conn);
    this.pendingSockets.delete(ws);
    this.stats.handshakesOk++;
    conn.send('welcome', { agentId, heartbeatSec: this.o.heartbeatSec, hubVersion: this.o.hubVersion }, d.msg.id);
    ws.on('message', (raw, bin) => this.onMessage(conn, raw as Buffer, bin));
    ws.on('pong', () => {
      conn.lastRecv = performance.now();
    });
    ws.on('ping', () => {
      conn.lastRecv = performance.now();
    });
    ws.on('close', (code, reason) => {
      if (this.conns.get(agentId) === conn) {
        this.conns.delete(agentId);
        void this.o.hosts.touch([agentId], this.now()).catch(() => {});
        const why = `closed ${code}${reason.length ? ' ' + reason.toString() : ''}`;
        this.o.log.info({ agentId, addr, why }, 'agent offline');
        this.failPending(agentId);
        this.emit('offline', agentId, why);
      }
    });
    this.o.log.info({ agentId, hostname: hello.facts.hostname, addr }, 'agent online');
    this.emit('online', agentId);
  }

  private readonly pending = new Map<string, { agentId: string; resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  /**
   * Sends a request and resolves with the agent's answer (the message whose `re` is the request's
   * id). Rejects with AgentUnavailable when the agent is offline or leaves before answering, and
   * with a timeout error after `timeoutMs`.
   */
  request<T extends MessageType>(agentId: string, type: T, body: BodyOf<T>, timeoutMs: number): Promise<Message> {
    const conn = this.conns.get(agentId);
    const id = conn?.send(type, body);
    if (!id) return Promise.reject(new AgentUnavailable(agentId));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentTimeout(agentId, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { agentId, resolve, reject, timer });
    });
  }

  private failPending(agentId: string): void {
    for (const [id, p] of this.pending) {
      if (p.agentId !== agentId) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new AgentUnavailable(agentId));
    }
  }

  private onMessage(conn: AgentConnection, raw: Buffer, isBinary: boolean): void {
    conn.lastRecv = performance.now();
    const text = isBinary ? '' : raw.toString('utf8');
    const d = isBinary ? ({ ok: false, code: 'bad_envelope', error: 'binary frames are not used on this link' } as const) : decodeFrame(text, this.maxFrame);
    if (!d.ok) return this.badFrame(conn, d.code, d.error, 'id' in d ? d.id : undefined);
    if (!AGENT_TO_HUB.has(d.msg.type) || d.msg.type === 'hello') return this.badFrame(conn, 'unexpected_type', `an agent may not send ${d.msg.type} now`, d.msg.id);
    conn.badFrames = 0;
    if (d.msg.re) {
      const p = this.pending.get(d.msg.re);
      if (p && p.agentId === conn.agentId) {
        this.pending.delete(d.msg.re);
        clearTimeout(p.timer);
        p.resolve(d.msg);
        return;
      }
    }
    switch (d.msg.type) {
      case 'facts':
        void this.o.hosts.updateFacts(conn.agentId, (d.msg.body as BodyOf<'facts'>).facts).catch((err: Error) => this.o.log.error({ err: err.message }, 'facts update failed'));
        break;
      case 'error':
        this.o.log.warn({ agentId: conn.agentId, re: d.msg.re, ...(d.msg.body as BodyOf<'error'>) }, 'agent reported an error');
        break;
    }
    this.emit('message', conn, d.msg, text);
  }

  /** Says why a frame was rejected and keeps the link, unless the peer keeps sending garbage. */
  private badFrame(conn: AgentConnection, code: string, message: string, re?: string): void {
    this.stats.badFrames++;
    conn.badFrames++;
    this.o.log.warn({ agentId: conn.agentId, code }, `bad frame from agent: ${message}`);
    conn.send('error', { code, message: message.slice(0, 4000) }, re);
    if (conn.badFrames >= 20) conn.ws.close(CLOSE.malformed, 'too many bad frames');
  }

  private sweep(): void {
    const now = performance.now();
    const hb = this.o.heartbeatSec * 1000;
    for (const conn of this.conns.values()) {
      if (now - conn.lastRecv > 3 * hb) {
        this.o.log.info({ agentId: conn.agentId }, 'agent missed 3 heartbeats');
        conn.ws.terminate(); // 'close' handler marks it offline
        continue;
      }
      if (now - conn.lastPing >= hb) {
        conn.lastPing = now;
        try {
          conn.ws.ping();
        } catch {
          /* socket already closing */
        }
      }
    }
  }

  private async flushLastSeen(): Promise<void> {
    const ids = this.onlineIds();
    const now = this.now();
    // In slices with a turn of the event loop between them: a fleet-wide update must not stall the link.
    for (let i = 0; i < ids.length; i += 250) {
      await this.o.hosts.touch(ids.slice(i, i + 250), now).catch((err: Error) => this.o.log.warn({ err: err.message }, 'last-seen flush failed'));
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Ends an agent's connection now (revocation, deletion). */
  disconnect(agentId: string, code: RefusalCode, reason: string): boolean {
    const conn = this.conns.get(agentId);
    if (!conn) return false;
    conn.send('refused', { code, reason, retry: false });
    conn.ws.close(code === 'revoked' ? CLOSE.revoked : CLOSE.auth, reason);
    // Stop treating it as online at once, even before the close handshake completes.
    this.conns.delete(agentId);
    this.failPending(agentId);
    this.emit('offline', agentId, reason);
    setTimeout(() => conn.ws.terminate(), 2000).unref();
    return true;
  }

  /**
   * Closes an agent's socket without refusing it (it may connect again at once): a stale socket
   * of an agent that connected to another hub, or this hub draining.
   */
  drop(agentId: string, reason: string, code: number = CLOSE.conflict): boolean {
    const conn = this.conns.get(agentId);
    if (!conn) return false;
    conn.ws.close(code, reason.slice(0, 120));
    this.conns.delete(agentId);
    this.failPending(agentId);
    this.emit('offline', agentId, reason);
    setTimeout(() => conn.ws.terminate(), 2000).unref();
    return true;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    clearInterval(this.flusher);
    await this.flushLastSeen();
    for (const ws of this.pendingSockets) ws.close(CLOSE.shutdown, 'hub shutting down');
    for (const c of this.conns.values()) c.ws.close(CLOSE.shutdown, 'hub shutting down');
  }
}
