/**
 * The agent: dials out to the hub (the host opens no port), proves its identity, reports facts,
 * keeps the link alive with heartbeats, and reconnects with jittered backoff when it drops.
 * What it may do is decided by its local configuration (capabilities), never by the hub.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import {
  HUB_TO_AGENT,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  TETHER_VERSION,
  authPayload,
  decodeFrame,
  encodeFrame,
  newMessageId,
  signPayload,
  type BodyOf,
  type HostFacts,
  type Message,
  type MessageType,
  type RefusedBody,
} from '@tether/protocol';
import type { AgentConfig } from './config.js';
import { loadOrCreateIdentity, saveAgentId, writePrivate, writeStatus, type Identity } from './identity.js';
import { accessFacts, gatherFacts } from './facts.js';
import { fullJitterMs } from './backoff.js';
import { pinnedTls } from './tls.js';
import { installedHome } from './update.js';

/** The version this agent reports: its artifact's VERSION when installed from one, else the build's. */
export const AGENT_VERSION = installedHome()?.version ?? TETHER_VERSION;

export interface AgentExit {
  /** why the agent gave up (only for refusals where retrying cannot help) or `stopped` */
  code: RefusedBody['code'] | 'stopped';
  reason: string;
}

export interface AgentEvents {
  connected: [agentId: string];
  /** any message after the handshake that the link itself does not handle (acks, later: tasks) */
  message: [msg: Message];
  disconnected: [reason: string];
  refused: [body: RefusedBody];
}

interface ConnOutcome {
  welcomed: boolean;
  refused?: RefusedBody;
  /** the WebSocket close code */
  closeCode?: number;
}

/** The cluster's other hubs as the last hub said (`cluster.hubs`), kept across restarts. */
export const CLUSTER_FILE = 'cluster.json';

/** Close codes after which an agent goes to another hub of its cluster: draining, shutting down, gone. */
const MOVE_ON = new Set([4503, 1001, 1006, 4409]);

export class Agent extends EventEmitter<AgentEvents> {
  private identity: Identity;
  private ws: WebSocket | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private facts: HostFacts;
  private factsTimer: NodeJS.Timeout | undefined;
  /** bytesIn/bytesOut: WebSocket payload bytes since the agent started (the self collector reports them) */
  readonly stats = { reconnects: 0, connectedSince: 0, bytesIn: 0, bytesOut: 0 };

  /** the hub connected to now, or tried next: the configured one, or another of its cluster */
  private current: string;
  /** the cluster's other hubs (same scheme as the configured hub's), from `cluster.hubs` */
  private others: string[] = [];

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    private readonly opts: { factsIntervalMs?: number; gather?: () => HostFacts } = {},
  ) {
    super();
    this.current = cfg.hubUrl;
    try {
      const saved = JSON.parse(readFileSync(join(cfg.stateDir, CLUSTER_FILE), 'utf8')) as { hubs?: unknown };
      this.others = this.acceptable(saved.hubs);
    } catch {
      /* none yet */
    }
    // One 'message' listener per service (tasks, files, terminals, reporter, each host manager):
    // eleven in `tether agent`, a fixed set, not a leak. Node warns past ten by default.
    this.setMaxListeners(32);
    this.identity = loadOrCreateIdentity(cfg.stateDir);
    this.facts = this.gather();
  }

  private gather(): HostFacts {
    return { ...(this.opts.gather ?? gatherFacts)(), access: accessFacts(this.cfg) };
  }

  get agentId(): string | undefined {
    return this.identity.agentId;
  }

  /** Runs until stopped or refused for good. */
  async run(): Promise<AgentExit> {
    if (!this.identity.agentId && !this.cfg.token) {
      return { code: 'bad_token', reason: `not enrolled yet (no identity in ${this.cfg.stateDir}) and no enrollment token given` };
    }
    if (this.identity.agentId && this.identity.hubUrl && this.identity.hubUrl !== this.cfg.hubUrl) {
      this.log.warn({ enrolledWith: this.identity.hubUrl, hub: this.cfg.hubUrl }, 'hub URL differs from the one this agent enrolled with');
    }
    this.factsTimer = setInterval(() => this.refreshFacts(), this.opts.factsIntervalMs ?? 60_000);
    this.factsTimer.unref();
    let attempt = 0;
    try {
      while (!this.stopped) {
        const out = await this.connectOnce();
        if (this.stopped) break;
        if (out.refused && !out.refused.retry) {
          this.log.error({ code: out.refused.code }, `hub refused this agent: ${out.refused.reason}`);
          return { code: out.refused.code, reason: out.refused.reason };
        }
        if (out.welcomed) attempt = 0;
        const moved = this.chooseHub(out);
        // Moving off a draining hub: at once (spread over half a second), not after a backoff.
        const delay = moved && out.closeCode === 4503 ? Math.floor(Math.random() * 500) : fullJitterMs(attempt, this.cfg.reconnectCapSec * 1000);
        attempt++;
        this.stats.reconnects++;
        this.log.info({ delayMs: delay, attempt }, 'reconnecting');
        await new Promise<void>((res) => {
          const t = setTimeout(res, delay);
          this.wake = () => {
            clearTimeout(t);
            res();
          };
        });
        this.wake = undefined;
      }
      return { code: 'stopped', reason: 'stopped' };
    } finally {
      clearInterval(this.factsTimer);
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
    this.ws?.close(1001, 'agent stopping');
  }

  /** Hub URLs an agent may be sent to: http(s) with the configured hub's scheme (never a downgrade to http). */
  private acceptable(list: unknown): string[] {
    if (!Array.isArray(list)) return [];
    const scheme = new URL(this.cfg.hubUrl).protocol;
    const out: string[] = [];
    for (const x of list.slice(0, 32)) {
      if (typeof x !== 'string' || x.length > 2048) continue;
      try {
        const u = new URL(x);
        if (u.protocol === scheme && !out.includes(x)) out.push(x);
      } catch {
        /* not a URL */
      }
    }
    return out;
  }

  /** A hub told this agent where else it may go. */
  private learnHubs(list: unknown): void {
    const next = this.acceptable(list);
    if (JSON.stringify(next) === JSON.stringify(this.others)) return;
    this.others = next;
    try {
      writePrivate(join(this.cfg.stateDir, CLUSTER_FILE), JSON.stringify({ hubs: next, at: new Date().toISOString() }) + '\n');
    } catch {
      /* a read-only state directory: kept in memory */
    }
    this.log.info({ hubs: next }, 'learned the other hubs of the cluster');
  }

  /**
   * Where to connect next. With no other hub known: the same one. After a connection that ended
   * because its hub drains, stops or died (or could not be made): another hub of the cluster, at
   * random among the rest, so that a dead hub's agents spread over the others.
   */
  private chooseHub(out: ConnOutcome): boolean {
    const all = [...new Set([this.cfg.hubUrl, ...this.others])];
    if (all.length < 2) return false;
    const leave = !out.welcomed || MOVE_ON.has(out.closeCode ?? 0);
    if (!leave) return false;
    const rest = all.filter((u) => u !== this.current);
    const next = rest[Math.floor(Math.random() * rest.length)]!;
    this.log.info({ from: this.current, to: next, closeCode: out.closeCode }, 'moving to another hub of the cluster');
    this.current = next;
    return true;
  }

  private wsUrl(): string {
    const u = new URL(this.current);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.pathname = u.pathname.replace(/\/$/, '') + '/api/v1/agent/ws';
    return u.toString();
  }

  /** Sends when connected and returns the message id, or undefined when the link is down. */
  send<T extends MessageType>(type: T, body: BodyOf<T>, re?: string): string | undefined {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.ready) return undefined;
    const id = newMessageId();
    const frame = encodeFrame(type, body, { id, ...(re ? { re } : {}) });
    this.stats.bytesOut += Buffer.byteLength(frame);
    ws.send(frame);
    return id;
  }

  private ready = false;

  /** Bytes queued on the socket and not yet written (0 when disconnected). */
  get bufferedAmount(): number {
    return this.ws && this.ready ? this.ws.bufferedAmount : 0;
  }

  private refreshFacts(): void {
    const next = this.gather();
    if (JSON.stringify(next) !== JSON.stringify(this.facts)) {
      this.facts = next;
      if (this.send('facts', { facts: next }) !== undefined) this.log.info('host facts changed; sent to hub');
    }
  }

  private connectOnce(): Promise<ConnOutcome> {
    return new Promise((resolve) => {
      const out: ConnOutcome = { welcomed: false };
      const ws = new WebSocket(this.wsUrl(), { maxPayload: MAX_FRAME_BYTES, handshakeTimeout: 15_000, perMessageDeflate: false, ...pinnedTls(this.cfg.hubFingerprint) });
      this.ws = ws;
      let phase: 'challenge' | 'welcome' | 'ready' = 'challenge';
      let lastRecv = Date.now();
      let hbTimer: NodeJS.Timeout | undefined;
      // Until the welcome names the heartbeat, the handshake itself must finish in bounded time.
      const handshakeTimer = setTimeout(() => {
        this.log.warn('handshake with hub timed out');
        ws.terminate();
      }, 30_000);

      const startHeartbeat = (hbSec: number) => {
        const hb = hbSec * 1000;
        let lastPing = Date.now();
        hbTimer = setInterval(() => {
          const now = Date.now();
          if (now - lastRecv > 3 * hb) {
            this.log.warn({ silentMs: now - lastRecv }, 'hub missed 3 heartbeats; dropping the connection');
            ws.terminate();
            return;
          }
          if (now - lastPing >= hb) {
            lastPing = now;
            try {
              ws.ping();
            } catch {
              /* closing */
            }
          }
        }, Math.max(25, hb / 4));
      };

      ws.on('open', () => this.log.debug({ url: this.wsUrl() }, 'connected; waiting for challenge'));
      ws.on('pong', () => (lastRecv = Date.now()));
      ws.on('ping', () => (lastRecv = Date.now()));
      ws.on('message', (data, isBinary) => {
        lastRecv = Date.now();
        this.stats.bytesIn += (data as Buffer).length ?? 0;
        const d = isBinary ? ({ ok: false, error: 'binary frame' } as const) : decodeFrame(data as Buffer);
        if (!d.ok) {
          this.log.warn({ error: d.error }, 'bad frame from hub');
          // Answered as a reply when the frame had an id: a request this agent cannot read (an op
          // added after it) fails at once at the hub instead of waiting out its timeout.
          if (phase === 'ready') this.send('error', { code: 'bad_frame', message: d.error.slice(0, 4000) }, 'id' in d ? d.id : undefined);
          else ws.terminate();
          return;
        }
        const msg = d.msg;
        if (!HUB_TO_AGENT.has(msg.type)) {
          this.send('error', { code: 'unexpected_type', message: `an agent does not accept ${msg.type}` }, msg.id);
          return;
        }
        if (msg.type === 'refused') {
          out.refused = msg.body as RefusedBody;
          this.emit('refused', out.refused);
          this.log.warn({ code: out.refused.code, retry: out.refused.retry }, `refused by hub: ${out.refused.reason}`);
          return; // the hub closes the socket
        }
        if (phase === 'challenge' && msg.type === 'challenge') {
          this.sendHello((msg as Message<'challenge'>).body.nonce);
          phase = 'welcome';
          return;
        }
        if (phase === 'welcome' && msg.type === 'welcome') {
          const w = (msg as Message<'welcome'>).body;
          clearTimeout(handshakeTimer);
          if (!this.identity.agentId) {
            saveAgentId(this.cfg.stateDir, w.agentId, this.cfg.hubUrl);
            this.log.info({ agentId: w.agentId }, 'enrolled');
            // The token has done its work: a token file written by install.sh goes (it may be reusable).
            if (this.cfg.tokenFile) rmSync(this.cfg.tokenFile, { force: true });
          }
          writeStatus(this.cfg.stateDir, { state: 'online', agentId: w.agentId, hub: this.current, version: AGENT_VERSION });
          this.identity.agentId = w.agentId;
          this.identity.hubUrl = this.cfg.hubUrl;
          phase = 'ready';
          this.ready = true;
          out.welcomed = true;
          this.stats.connectedSince = Date.now();
          startHeartbeat(w.heartbeatSec);
          this.log.info({ agentId: w.agentId, heartbeatSec: w.heartbeatSec, hub: this.current }, 'connected to hub');
          this.emit('connected', w.agentId);
          return;
        }
        if (msg.type === 'error') {
          this.log.warn({ re: msg.re, ...(msg.body as BodyOf<'error'>) }, 'hub reported an error');
          return;
        }
        if (msg.type === 'cluster.hubs' && phase === 'ready') {
          this.learnHubs((msg.body as BodyOf<'cluster.hubs'>).hubs);
          return;
        }
        if (phase === 'ready') {
          this.emit('message', msg);
          return;
        }
        this.log.warn({ type: msg.type, phase }, 'unexpected message');
      });
      ws.on('error', (err) => this.log.warn({ err: err.message }, 'hub connection error'));
      ws.on('close', (code, reason) => {
        this.ready = false;
        out.closeCode = code;
        clearTimeout(handshakeTimer);
        clearInterval(hbTimer);
        const why = `${code}${reason.length ? ' ' + reason.toString() : ''}`;
        if (out.welcomed) {
          writeStatus(this.cfg.stateDir, { state: 'offline', ...(this.identity.agentId ? { agentId: this.identity.agentId } : {}), hub: this.current, version: AGENT_VERSION, why });
          this.log.info({ why }, 'disconnected from hub');
          this.emit('disconnected', why);
        }
        resolve(out);
      });
    });
  }

  private sendHello(nonce: string): void {
    const id = this.identity;
    const enrolling = !id.agentId;
    const subject = enrolling ? id.publicKey : id.agentId!;
    const body: BodyOf<'hello'> = {
      protocol: PROTOCOL_VERSION,
      agentVersion: AGENT_VERSION,
      signature: signPayload(id.privateKeyPem, authPayload(nonce, subject)),
      facts: this.facts,
      capabilities: this.cfg.capabilities,
      ...(enrolling ? { enrollToken: this.cfg.token!, publicKey: id.publicKey } : { agentId: id.agentId! }),
    };
    this.ws?.send(encodeFrame('hello', body));
  }
}
