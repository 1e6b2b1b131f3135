/**
 * One WebSocket to /api/v1/live per tab, shared by every page. Pages say which hosts (or all)
 * they want; samples and online/offline changes are pushed, never polled. The socket reconnects
 * on its own with backoff and re-subscribes; `status` tells the banner whether it is connected.
 *
 * A hub that stalls keeps its sockets open, so a quiet socket is asked something now and then: an
 * unsubscribe from no host, which changes nothing and is answered with `subscribed`. No answer
 * within the console's answer timeout says the hub is not responding (api.ts `noteHub`).
 */
import { ANSWER_TIMEOUT_MS, noteHub, wsUrl } from './api';

/** How long the socket may be quiet before it is probed. */
const QUIET_MS = 10_000;

export interface Sample {
  type: 'sample';
  hostId: string;
  kind: string;
  ts: number;
  series: Record<string, number>;
}
export interface StatusChange {
  type: 'status';
  hostId: string;
  online: boolean;
  ts: number;
}
export type LiveEvent = Sample | StatusChange;
export type LiveStatus = 'connecting' | 'open' | 'offline';

const ALL_KINDS = ['usage', 'processes', 'connections', 'sensors', 'gpu', 'self'];

interface Interest {
  hosts: '*' | string[];
  kinds?: string[];
  fn: (e: LiveEvent) => void;
}

class LiveClient {
  private ws: WebSocket | undefined;
  private readonly interests = new Set<Interest>();
  private readonly statusFns = new Set<(s: LiveStatus, reconnected: boolean) => void>();
  status: LiveStatus = 'connecting';
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private everOpen = false;
  private stopped = true;
  private heardAt = 0;
  private probeSentAt = 0;
  private watch: ReturnType<typeof setInterval> | undefined;

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
    this.watch = setInterval(() => this.check(), 2_500);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watch);
    this.ws?.close(1000);
    this.ws = undefined;
    noteHub('live', true);
  }

  /** Probes a quiet socket; gives up on one that never opened or never answered. */
  private check(): void {
    const ws = this.ws;
    if (!ws) return;
    const now = Date.now();
    if (ws.readyState === WebSocket.CONNECTING) {
      // An upgrade the hub never answers: the socket would wait for good.
      if (now - this.heardAt > ANSWER_TIMEOUT_MS) {
        noteHub('live', false);
        ws.close();
        this.closed(ws);
      }
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    if (this.probeSentAt) {
      if (now - this.probeSentAt > ANSWER_TIMEOUT_MS) noteHub('live', false);
    } else if (now - this.heardAt > QUIET_MS) {
      this.probeSentAt = now;
      ws.send(JSON.stringify({ op: 'unsubscribe', hosts: [] }));
    }
  }

  private setStatus(s: LiveStatus, reconnected = false): void {
    this.status = s;
    for (const f of this.statusFns) f(s, reconnected);
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(wsUrl('/api/v1/live'));
    this.ws = ws;
    this.heardAt = Date.now();
    this.probeSentAt = 0;
    ws.onopen = () => {
      this.heard();
      const reconnected = this.everOpen;
      this.everOpen = true;
      this.attempt = 0;
      this.resubscribe();
      this.setStatus('open', reconnected);
    };
    ws.onmessage = (m) => {
      this.heard();
      let e: LiveEvent | { type: string };
      try {
        e = JSON.parse(m.data as string) as LiveEvent;
      } catch {
        return;
      }
      if (e.type !== 'sample' && e.type !== 'status') return;
      const ev = e as LiveEvent;
      for (const i of this.interests) {
        if (i.hosts !== '*' && !i.hosts.includes(ev.hostId)) continue;
        if (ev.type === 'sample' && i.kinds && !i.kinds.includes(ev.kind)) continue;
        i.fn(ev);
      }
    };
    ws.onclose = () => this.closed(ws);
  }

  private heard(): void {
    this.heardAt = Date.now();
    this.probeSentAt = 0;
    noteHub('live', true);
  }

  private closed(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    if (this.stopped) return;
    this.setStatus('offline');
    // Exponential backoff with full jitter, capped at 15 s.
    const delay = Math.random() * Math.min(15_000, 500 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** The union of what pages want; the hub keeps one subscription set per socket. */
  private resubscribe(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    let all = false;
    const hosts = new Set<string>();
    for (const i of this.interests) {
      if (i.hosts === '*') all = true;
      else i.hosts.forEach((h) => hosts.add(h));
    }
    // Kinds the hub need not send: only when every page names the kinds it wants.
    const kinds = [...this.interests].every((i) => i.kinds) ? [...new Set([...this.interests].flatMap((i) => i.kinds!))] : ALL_KINDS;
    ws.send(JSON.stringify({ op: 'unsubscribe', hosts: '*' }));
    if (all) ws.send(JSON.stringify({ op: 'subscribe', hosts: '*', kinds }));
    else if (hosts.size) ws.send(JSON.stringify({ op: 'subscribe', hosts: [...hosts].slice(0, 1000), kinds }));
  }

  subscribe(hosts: '*' | string[], fn: (e: LiveEvent) => void, kinds?: string[]): () => void {
    const i: Interest = { hosts, fn, ...(kinds ? { kinds } : {}) };
    this.interests.add(i);
    this.resubscribe();
    return () => {
      this.interests.delete(i);
      this.resubscribe();
    };
  }

  onStatus(fn: (s: LiveStatus, reconnected: boolean) => void): () => void {
    this.statusFns.add(fn);
    return () => this.statusFns.delete(fn);
  }
}

export const live = new LiveClient();
