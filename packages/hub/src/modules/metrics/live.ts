/**
 * Live updates for browsers: one WebSocket per console tab at /api/v1/live. The client says which
 * hosts (or "*") it wants; the hub pushes each sample as it is ingested and every online/offline
 * change. A client that cannot keep up is disconnected, never buffered without bound.
 */
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { AgentReach } from '../agents/link.js';
import type { MetricsService } from './service.js';
import type { SeriesKind } from './series.js';
import { systemClock, type Clock } from '../../clock.js';

export const LIVE_MAX_BUFFERED = 1024 * 1024;
const MAX_SUBSCRIBE = 1000;

interface Sub {
  ws: WebSocket;
  all: boolean;
  hosts: Set<string>;
  kinds: Set<SeriesKind> | null;
  /** for a user limited to some hosts: whether a host may be pushed to this client */
  allow?: (hostId: string) => boolean;
}

export class LiveHub {
  private readonly subs = new Set<Sub>();
  readonly stats = { clients: 0, pushed: 0, droppedSlow: 0 };

  /** called when the number of live clients changes (a cluster relays other hubs' samples only while someone watches) */
  onClients: ((n: number) => void) | undefined;

  constructor(
    metrics: MetricsService,
    link: AgentReach,
    private readonly log: Logger,
    clock: Clock = systemClock,
  ) {
    // no message object per report while nobody watches (2,000 reports/s at 10,000 hosts)
    metrics.on('sample', (hostId, kind, ts, series) => this.subs.size > 0 && this.push(hostId, kind, { type: 'sample', hostId, kind, ts, series }));
    link.on('online', (hostId) => this.push(hostId, null, { type: 'status', hostId, online: true, ts: clock.now() }));
    link.on('offline', (hostId) => this.push(hostId, null, { type: 'status', hostId, online: false, ts: clock.now() }));
  }

  get clientCount(): number {
    return this.subs.size;
  }

  /** A sample of an agent held by another hub of the cluster (cluster/live.ts). */
  remoteSample(hostId: string, kind: SeriesKind, ts: number, series: Record<string, number>): void {
    if (this.subs.size > 0) this.push(hostId, kind, { type: 'sample', hostId, kind, ts, series });
  }

  attach(ws: WebSocket, opts: { allow?: (hostId: string) => boolean } = {}): void {
    const sub: Sub = { ws, all: false, hosts: new Set(), kinds: null, ...(opts.allow ? { allow: opts.allow } : {}) };
    this.subs.add(sub);
    this.stats.clients = this.subs.size;
    this.onClients?.(this.subs.size);
    ws.on('close', () => {
      this.subs.delete(sub);
      this.stats.clients = this.subs.size;
      this.onClients?.(this.subs.size);
    });
    ws.on('error', () => {});
    ws.on('message', (raw, isBinary) => {
      let m: { op?: unknown; hosts?: unknown; kinds?: unknown };
      try {
        if (isBinary) throw new Error('binary');
        m = JSON.parse(raw.toString()) as typeof m;
      } catch {
        return this.send(sub, { type: 'error', message: 'messages are JSON: {"op":"subscribe","hosts":["id"]|"*","kinds":["usage"]}' });
      }
      if (m.op !== 'subscribe' && m.op !== 'unsubscribe') return this.send(sub, { type: 'error', message: 'op must be subscribe or unsubscribe' });
      const hosts = m.hosts === '*' ? '*' : Array.isArray(m.hosts) && m.hosts.length <= MAX_SUBSCRIBE && m.hosts.every((h) => typeof h === 'string' && h.length <= 64) ? (m.hosts as string[]) : null;
      if (hosts === null) return this.send(sub, { type: 'error', message: `hosts must be "*" or up to ${MAX_SUBSCRIBE} host ids` });
      if (m.op === 'subscribe') {
        if (hosts === '*') sub.all = true;
        else hosts.forEach((h) => sub.hosts.add(h));
        if (Array.isArray(m.kinds)) sub.kinds = new Set(m.kinds.filter((k): k is SeriesKind => typeof k === 'string') as SeriesKind[]);
      } else {
        if (hosts === '*') {
          sub.all = false;
          sub.hosts.clear();
        } else hosts.forEach((h) => sub.hosts.delete(h));
      }
      this.send(sub, { type: 'subscribed', all: sub.all, hosts: [...sub.hosts] });
    });
    this.send(sub, { type: 'hello', message: 'send {"op":"subscribe","hosts":"*"} to receive samples' });
  }

  private push(hostId: string, kind: SeriesKind | null, msg: unknown): void {
    if (!this.subs.size) return;
    let text: string | undefined;
    for (const sub of this.subs) {
      if (!sub.all && !sub.hosts.has(hostId)) continue;
      if (kind && sub.kinds && !sub.kinds.has(kind)) continue;
      if (sub.allow && !sub.allow(hostId)) continue;
      text ??= JSON.stringify(msg);
      this.send(sub, text);
    }
  }

  private send(sub: Sub, msg: unknown): void {
    const ws = sub.ws;
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > LIVE_MAX_BUFFERED) {
      this.stats.droppedSlow++;
      this.log.warn({ buffered: ws.bufferedAmount }, 'live client too slow; disconnecting it');
      this.subs.delete(sub);
      ws.close(4429, 'too slow: reconnect and subscribe to fewer hosts');
      setTimeout(() => ws.terminate(), 1000).unref();
      return;
    }
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    this.stats.pushed++;
  }

  close(): void {
    for (const s of this.subs) s.ws.close(1001, 'hub shutting down');
    this.subs.clear();
  }
}
