/**
 * Active alerts pushed by the hub over /api/v1/alerts/live: a snapshot on connect, then every
 * change. One socket per tab, opened while something (the nav badge, the alerts page) listens;
 * it reconnects on its own with backoff and gets a fresh snapshot. Never polled.
 */
import { useSyncExternalStore } from 'react';
import { wsUrl } from '../../api';

export interface AlertView {
  id: string;
  ruleId: string;
  ruleName: string;
  severity: string;
  hostId: string;
  hostname: string;
  subject: string;
  state: 'pending' | 'firing' | 'resolved' | 'inactive';
  value: number | null;
  peak: number | null;
  threshold: number;
  op: string;
  startedAt: number;
  firedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  silenced: boolean;
  flapping: boolean;
  detail: string | null;
}

export type StreamStatus = 'connecting' | 'open' | 'offline';
export interface StreamSnap {
  alerts: AlertView[];
  status: StreamStatus;
}

/** One alert instance is rule × host × subject; its id changes when it goes from pending to firing. */
const keyOf = (a: AlertView) => `${a.ruleId}\u0000${a.hostId}\u0000${a.subject}`;

const SEV_ORDER: Record<string, number> = { critical: 0, warning: 1, info: 2 };

class AlertStream {
  private ws: WebSocket | undefined;
  private readonly byId = new Map<string, AlertView>();
  private readonly fns = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  snap: StreamSnap = { alerts: [], status: 'connecting' };

  private emit(status = this.snap.status): void {
    const alerts = [...this.byId.values()].sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1) || (SEV_ORDER[a.severity] ?? 9) - (SEV_ORDER[b.severity] ?? 9) || b.startedAt - a.startedAt);
    this.snap = { alerts, status };
    for (const f of this.fns) f();
  }

  private connect(): void {
    if (!this.fns.size) return;
    const ws = new WebSocket(wsUrl('/api/v1/alerts/live'));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.emit('open');
    };
    ws.onmessage = (m) => {
      let e: { type: string; alerts?: AlertView[]; alert?: AlertView };
      try {
        e = JSON.parse(m.data as string);
      } catch {
        return;
      }
      if (e.type === 'snapshot' && e.alerts) {
        this.byId.clear();
        for (const a of e.alerts) this.byId.set(keyOf(a), a);
      } else if (e.type === 'alert' && e.alert) {
        const a = e.alert;
        if (a.state === 'pending' || a.state === 'firing') this.byId.set(keyOf(a), a);
        else this.byId.delete(keyOf(a));
      } else return;
      this.emit();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (!this.fns.size) return;
      this.emit('offline');
      const delay = Math.random() * Math.min(15_000, 500 * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  subscribe = (fn: () => void): (() => void) => {
    this.fns.add(fn);
    if (this.fns.size === 1) {
      clearTimeout(this.timer);
      this.connect();
    }
    return () => {
      this.fns.delete(fn);
      if (this.fns.size) return;
      clearTimeout(this.timer);
      const ws = this.ws;
      this.ws = undefined;
      ws?.close(1000);
      this.byId.clear();
      this.snap = { alerts: [], status: 'connecting' };
    };
  };
}

export const alertStream = new AlertStream();

export function useActiveAlerts(): StreamSnap {
  return useSyncExternalStore(alertStream.subscribe, () => alertStream.snap);
}
