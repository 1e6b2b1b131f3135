/**
 * Reaching an agent held by another hub of the cluster (Nomad's servers forward to the peer holding
 * a client's connection; here the forwarding is NATS request/reply):
 *
 *  - each hub subscribes to `<prefix>.agent.<id>.req` for every agent it holds, and answers those
 *    requests through its own link; a request for an agent held elsewhere is a NATS request to that
 *    subject, and "no responders" means the agent is connected nowhere, at once (no timeout);
 *  - presence: each hub publishes which agents came and went (`<prefix>.presence`, batched every
 *    100 ms) and its whole list on every (re)connection and every 20 s, and beats every second
 *    (`<prefix>.hub.beat`). A hub silent for 3.5 s is gone and its agents offline, unless they
 *    are already connected elsewhere. While this hub is cut off from NATS it keeps what it last knew
 *    (no false "offline" for the whole fleet) and says so in its health;
 *  - an agent that connects to a hub while a stale socket of it lingers on another (it moved after a
 *    network cut) wins: the other hub closes the stale one when it hears the new presence.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { TERMINAL_AGENT_TO_HUB, TERMINAL_HUB_TO_AGENT, newMessageId, type BodyOf, type Message, type MessageType, type RefusalCode } from '@tether/protocol';
import { AgentTimeout, AgentUnavailable, CLOSE, type AgentLink, type AgentPort, type AgentReach } from '../modules/agents/link.js';
import { BusDown, BusTimeout, NoResponders, SUBJECT_ID, type ClusterBus } from './bus.js';

export interface HubBeat {
  id: string;
  /** where agents and browsers reach it */
  url: string;
  version: string;
  protocol: number;
  agents: number;
  draining: boolean;
  /** it has live browser clients: other hubs relay their agents' samples to it */
  watching?: boolean;
}

interface Peer extends HubBeat {
  lastBeat: number;
}

interface PresenceMsg {
  hub: string;
  on?: string[];
  off?: string[];
  /** a whole list, in parts: ids of this hub not in any part of this seq are gone */
  full?: { seq: number; last: boolean };
  ids?: string[];
}

type RemoteAnswer = { ok: true; msg: Message } | { ok: false; code: string; message: string };

/** What another hub may have this one write to its agents' sockets: the job scheduler's and terminals' messages. */
export const FORWARDED_TO_AGENT: ReadonlySet<MessageType> = new Set<MessageType>(['task.start', 'task.kill', 'task.ack', 'task.resync', ...TERMINAL_HUB_TO_AGENT]);
/** An agent's terminal messages, passed on to the hub whose browser opened the session. */
const TERMINAL_FROM_AGENT: ReadonlySet<MessageType> = new Set<MessageType>(TERMINAL_AGENT_TO_HUB);

const BEAT_MS = 1000;
const PEER_GONE_MS = 3500;
const FULL_EVERY_MS = 20_000;
const FULL_PART = 4000;

export interface ReachEvents {
  /** this hub's own agents' messages, and terminal messages other hubs pass on for this hub's sessions */
  message: [conn: AgentPort, msg: Message, frame: string];
  online: [agentId: string];
  offline: [agentId: string, reason: string];
  /** the set of live hubs changed */
  peers: [];
}

export class ClusterReach extends EventEmitter<ReachEvents> implements AgentReach {
  /** agent → hub, for agents held by other hubs */
  private readonly remote = new Map<string, string>();
  private readonly peers = new Map<string, Peer>();
  private readonly localSubs = new Map<string, () => void>();
  private readonly fullParts = new Map<string, { seq: number; ids: Set<string> }>();
  private pendingOn = new Set<string>();
  private pendingOff = new Set<string>();
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubs: (() => void)[] = [];
  private fullSeq = 0;
  private draining = false;
  private watching = false;
  /** terminal sessions of this hub's agents opened by another hub: session id → that hub */
  private readonly termOwner = new Map<string, string>();
  readonly stats = { forwarded: 0, answered: 0, moved: 0 };

  constructor(
    private readonly link: AgentLink,
    private readonly bus: ClusterBus,
    private readonly me: Omit<HubBeat, 'agents' | 'draining'>,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  start(): void {
    this.on('peers', () => this.tellAll());
    this.link.on('online', (id) => this.localOnline(id));
    this.link.on('offline', (id, why) => this.localOffline(id, why));
    this.link.on('message', (conn, msg, frame) => {
      if (TERMINAL_FROM_AGENT.has(msg.type)) {
        const sid = (msg.body as { sessionId?: string }).sessionId ?? '';
        const owner = this.termOwner.get(sid);
        if (owner) {
          if (msg.type === 'term.exit') this.termOwner.delete(sid);
          this.flushPresence();
          this.bus.publish(this.bus.subject('hub', owner, 'agent'), { agentId: conn.agentId, msg });
          return;
        }
      }
      if (this.listenerCount('message')) this.emit('message', conn, msg, frame);
    });
    this.unsubs.push(
      this.bus.subscribe(this.bus.subject('hub', this.me.id, 'agent'), (d) => {
        const f = d as { agentId?: string; msg?: Message };
        if (!f || typeof f.agentId !== 'string' || !f.msg || !TERMINAL_FROM_AGENT.has(f.msg.type)) return;
        this.emit('message', this.port(f.agentId) ?? this.remotePort(f.agentId), f.msg, '');
      }),
      this.bus.subscribe(this.bus.subject('presence'), (d) => this.onPresence(d as PresenceMsg)),
      this.bus.subscribe(this.bus.subject('hub', 'beat'), (d) => this.onBeat(d as HubBeat)),
      this.bus.subscribe(this.bus.subject('hub', 'bye'), (d) => this.peerGone((d as { id: string }).id, 'hub stopped')),
    );
    this.bus.on('state', (s) => {
      if (s !== 'connected') return;
      // Back on the bus: give peers a beat's time before judging them, and tell them what we hold.
      const now = performance.now();
      for (const p of this.peers.values()) p.lastBeat = now;
      this.beat();
      this.publishFull();
    });
    for (const id of this.link.onlineIds()) this.localOnline(id);
    this.beat();
    this.publishFull();
    this.timers.push(
      setInterval(() => this.beat(), BEAT_MS),
      setInterval(() => this.sweepPeers(), 500),
      setInterval(() => this.publishFull(), FULL_EVERY_MS),
    );
    for (const t of this.timers) t.unref();
  }

  // ---- AgentReach ------------------------------------------------------------------------------

  isOnline(agentId: string): boolean {
    return this.link.isOnline(agentId) || this.remote.has(agentId);
  }

  get onlineCount(): number {
    return this.link.onlineCount + this.remote.size;
  }

  port(agentId: string): AgentPort | undefined {
    return this.link.get(agentId) ?? (this.remote.has(agentId) ? this.remotePort(agentId) : undefined);
  }

  /** A port for an agent whose message came over the bus, held here or not (cluster/jobs.ts). */
  portVia(agentId: string): AgentPort {
    return this.link.get(agentId) ?? this.remotePort(agentId);
  }

  /** Sends through the bus to the hub holding the agent (which writes it to the agent's socket). */
  private remotePort(agentId: string): AgentPort {
    return {
      agentId,
      agentVersion: '',
      send: <T extends MessageType>(type: T, body: BodyOf<T>, re?: string) => {
        if (!FORWARDED_TO_AGENT.has(type) || !SUBJECT_ID.test(agentId) || !this.bus.connected) return undefined;
        this.bus.publish(this.bus.subject('agent', agentId, 'send'), { type, body, from: this.me.id, ...(re ? { re } : {}) });
        return newMessageId();
      },
    };
  }

  /** the hub holding the agent (this one's id for a local agent) */
  where(agentId: string): string | undefined {
    return this.link.isOnline(agentId) ? this.me.id : this.remote.get(agentId);
  }

  async request<T extends MessageType>(agentId: string, type: T, body: BodyOf<T>, timeoutMs: number): Promise<Message> {
    if (this.link.isOnline(agentId)) return this.link.request(agentId, type, body, timeoutMs);
    if (!SUBJECT_ID.test(agentId)) throw new AgentUnavailable(agentId);
    this.stats.forwarded++;
    let a: RemoteAnswer;
    try {
      a = (await this.bus.request(this.bus.subject('agent', agentId, 'req'), { type, body, timeoutMs }, timeoutMs + 2000)) as RemoteAnswer;
    } catch (err) {
      if (err instanceof NoResponders) {
        this.forgetRemote(agentId, 'no hub holds it');
        throw new AgentUnavailable(agentId);
      }
      if (err instanceof BusDown) throw Object.assign(new AgentUnavailable(agentId), { message: `agent ${agentId} is not connected to this hub, and the cluster bus is down (cluster degraded)` });
      if (err instanceof BusTimeout) throw new AgentTimeout(agentId, timeoutMs);
      throw err;
    }
    if (a.ok) return a.msg;
    if (a.code === 'agent_timeout') throw new AgentTimeout(agentId, timeoutMs);
    throw new AgentUnavailable(agentId);
  }

  disconnect(agentId: string, code: RefusalCode, reason: string): boolean {
    if (this.link.isOnline(agentId)) return this.link.disconnect(agentId, code, reason);
    const was = this.remote.has(agentId);
    if (SUBJECT_ID.test(agentId)) this.bus.publish(this.bus.subject('agent', agentId, 'ctl'), { disconnect: { code, reason } });
    if (was) this.forgetRemote(agentId, reason);
    return was;
  }

  /** The live hubs, this one first. */
  hubs(): HubBeat[] {
    return [{ id: this.me.id, url: this.me.url, version: this.me.version, protocol: this.me.protocol, agents: this.link.onlineCount, draining: this.draining }, ...[...this.peers.values()].map(({ lastBeat: _l, ...p }) => p)];
  }

  /**
   * Drains this hub: it takes no new agents, tells its agents where else to go, and closes their
   * sockets in slices (4503 "hub draining"), so that they reconnect to the others spread over
   * time. Tasks are not touched: an agent runs them through the move and reports to the cluster's
   * scheduler from its new hub. Resolves with how many agents were asked to move.
   */
  async drain(): Promise<number> {
    this.draining = true;
    this.link.draining = true;
    this.beat();
    const ids = this.link.onlineIds();
    const urls = this.otherHubUrls();
    for (let i = 0; i < ids.length; i += 100) {
      for (const id of ids.slice(i, i + 100)) {
        this.tellHubs(id, urls);
        this.link.drop(id, 'hub draining', CLOSE.draining);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.log.info({ agents: ids.length, to: urls }, 'hub drained: its agents were asked to move');
    return ids.length;
  }

  /** whether another hub has live clients (see cluster/live.ts) */
  peersWatching(): boolean {
    for (const p of this.peers.values()) if (p.watching) return true;
    return false;
  }

  setWatching(on: boolean): void {
    if (this.watching === on) return;
    this.watching = on;
    this.beat();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  // ---- this hub's agents -----------------------------------------------------------------------

  private localOnline(id: string): void {
    if (this.localSubs.has(id) || !SUBJECT_ID.test(id)) return;
    const unReq = this.bus.subscribe(this.bus.subject('agent', id, 'req'), (d, msg) => void this.answer(id, d as { type: MessageType; body: unknown; timeoutMs: number }).then((a) => this.bus.reply(msg, a)));
    const unCtl = this.bus.subscribe(this.bus.subject('agent', id, 'ctl'), (d) => {
      const c = (d as { disconnect?: { code: RefusalCode; reason: string } }).disconnect;
      if (c) this.link.disconnect(id, c.code, String(c.reason).slice(0, 200));
    });
    const unSend = this.bus.subscribe(this.bus.subject('agent', id, 'send'), (d) => {
      const m = d as { type?: MessageType; body?: unknown; re?: string; from?: string };
      if (!m || !m.type || !FORWARDED_TO_AGENT.has(m.type)) return;
      if (m.type === 'term.open' && typeof m.from === 'string' && SUBJECT_ID.test(m.from)) this.termOwner.set(String((m.body as { sessionId?: string }).sessionId), m.from);
      this.link.get(id)?.send(m.type, m.body as never, typeof m.re === 'string' ? m.re : undefined);
    });
    this.localSubs.set(id, () => (unReq(), unCtl(), unSend()));
    this.tellHubs(id);
    const wasRemote = this.remote.delete(id);
    this.pendingOff.delete(id);
    this.pendingOn.add(id);
    this.schedule();
    if (!wasRemote) this.emit('online', id);
  }

  private localOffline(id: string, why: string): void {
    this.localSubs.get(id)?.();
    this.localSubs.delete(id);
    this.pendingOn.delete(id);
    this.pendingOff.add(id);
    this.schedule();
    if (!this.remote.has(id)) this.emit('offline', id, why);
  }

  /** Where this hub's agents may go: the other hubs that are not draining. */
  otherHubUrls(): string[] {
    return [...this.peers.values()].filter((p) => !p.draining && /^https?:\/\//.test(p.url)).map((p) => p.url).slice(0, 32);
  }

  private tellHubs(id: string, urls = this.otherHubUrls()): void {
    if (urls.length) this.link.get(id)?.send('cluster.hubs', { hubs: urls });
  }

  /** Tells every agent of this hub the current list (in slices: a hub may hold thousands). */
  private tellAll(): void {
    const urls = this.otherHubUrls();
    const ids = this.link.onlineIds();
    const slice = (i: number) => {
      for (const id of ids.slice(i, i + 500)) this.tellHubs(id, urls);
      if (i + 500 < ids.length) setImmediate(() => slice(i + 500));
    };
    slice(0);
  }

  private async answer(id: string, r: { type: MessageType; body: unknown; timeoutMs: number }): Promise<RemoteAnswer> {
    this.stats.answered++;
    const timeoutMs = Math.max(100, Math.min(Number(r.timeoutMs) || 30_000, 600_000));
    try {
      return { ok: true, msg: await this.link.request(id, r.type, r.body as never, timeoutMs) };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { ok: false, code: e.code ?? 'error', message: e.message };
    }
  }

  private schedule(): void {
    if (this.batchTimer) return;
    this.batchTimer = setTimeout(() => this.flushPresence(), 100);
    this.batchTimer.unref();
  }

  /**
   * Publishes the batch of comings and goings now. Called before an agent's message is passed on
   * to another hub: NATS keeps one publisher's messages in order, so that hub hears the agent came
   * online before it hears the agent speak (else a job scheduler would take the late "online" for
   * a new connection and wait for a sync it already had).
   */
  flushPresence(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (!this.pendingOn.size && !this.pendingOff.size) return;
    this.bus.publish(this.bus.subject('presence'), { hub: this.me.id, ...(this.pendingOn.size ? { on: [...this.pendingOn] } : {}), ...(this.pendingOff.size ? { off: [...this.pendingOff] } : {}) } satisfies PresenceMsg);
    this.pendingOn = new Set();
    this.pendingOff = new Set();
  }

  private publishFull(): void {
    if (!this.bus.connected) return;
    const ids = [...this.localSubs.keys()];
    const seq = ++this.fullSeq;
    for (let i = 0; i === 0 || i < ids.length; i += FULL_PART) {
      this.bus.publish(this.bus.subject('presence'), { hub: this.me.id, full: { seq, last: i + FULL_PART >= ids.length }, ids: ids.slice(i, i + FULL_PART) } satisfies PresenceMsg);
    }
  }

  private beat(): void {
    this.bus.publish(this.bus.subject('hub', 'beat'), { id: this.me.id, url: this.me.url, version: this.me.version, protocol: this.me.protocol, agents: this.link.onlineCount, draining: this.draining, watching: this.watching } satisfies HubBeat);
  }

  // ---- other hubs ------------------------------------------------------------------------------

  private onBeat(b: HubBeat): void {
    if (!b || typeof b.id !== 'string' || b.id === this.me.id) return;
    const prev = this.peers.get(b.id);
    const known = prev !== undefined;
    this.peers.set(b.id, { id: b.id, url: String(b.url), version: String(b.version), protocol: Number(b.protocol), agents: Number(b.agents) || 0, draining: Boolean(b.draining), watching: Boolean(b.watching), lastBeat: performance.now() });
    if (!known) {
      this.log.info({ hub: b.id, url: b.url }, 'cluster: hub joined');
      this.emit('peers');
    } else if (prev.draining !== Boolean(b.draining) || prev.url !== String(b.url)) this.emit('peers');
  }

  private onPresence(p: PresenceMsg): void {
    if (!p || typeof p.hub !== 'string' || p.hub === this.me.id) return;
    const peer = this.peers.get(p.hub);
    if (peer) peer.lastBeat = performance.now();
    for (const id of p.on ?? []) this.remoteOn(String(id), p.hub);
    for (const id of p.off ?? []) if (this.remote.get(id) === p.hub) this.forgetRemote(id, `left hub ${p.hub}`);
    if (p.full && Array.isArray(p.ids)) {
      let acc = this.fullParts.get(p.hub);
      if (!acc || acc.seq !== p.full.seq) this.fullParts.set(p.hub, (acc = { seq: p.full.seq, ids: new Set() }));
      for (const id of p.ids) {
        acc.ids.add(String(id));
        this.remoteOn(String(id), p.hub);
      }
      if (p.full.last) {
        this.fullParts.delete(p.hub);
        for (const [id, hub] of [...this.remote]) if (hub === p.hub && !acc.ids.has(id)) this.forgetRemote(id, `not held by hub ${p.hub}`);
      }
    }
  }

  private remoteOn(id: string, hub: string): void {
    if (this.link.isOnline(id)) {
      // It connected there after connecting here: the socket here is stale (the agent holds one).
      this.stats.moved++;
      this.log.info({ agentId: id, to: hub }, 'agent moved to another hub; closing its stale socket here');
      this.link.drop(id, 'connected to another hub');
    }
    const before = this.isOnline(id);
    this.remote.set(id, hub);
    if (!before) this.emit('online', id);
  }

  private forgetRemote(id: string, why: string): void {
    if (!this.remote.delete(id)) return;
    if (!this.link.isOnline(id)) this.emit('offline', id, why);
  }

  private sweepPeers(): void {
    if (!this.bus.connected) return; // cut off: keep what was last known
    const now = performance.now();
    for (const p of [...this.peers.values()]) if (now - p.lastBeat > PEER_GONE_MS) this.peerGone(p.id, `no beat for ${Math.round((now - p.lastBeat) / 1000)} s`);
  }

  private peerGone(hub: string, why: string): void {
    if (hub === this.me.id || !this.peers.delete(hub)) return;
    this.log.warn({ hub, why }, 'cluster: hub gone; its agents are offline until they reconnect elsewhere');
    for (const [id, h] of [...this.remote]) if (h === hub) this.forgetRemote(id, `hub ${hub} gone`);
    this.fullParts.delete(hub);
    this.emit('peers');
  }

  /** Tells the others this hub is leaving (its agents then show offline until they reconnect elsewhere). */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.batchTimer);
    for (const u of this.unsubs) u();
    for (const u of this.localSubs.values()) u();
    this.localSubs.clear();
    this.bus.publish(this.bus.subject('hub', 'bye'), { id: this.me.id });
    await this.bus.flush(1000);
  }
}
