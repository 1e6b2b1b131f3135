/**
 * The seam for anomaly rules: a source reports level signals (current values) and events
 * (occurrences); the alert service turns them into alerts with the same states, silences,
 * grouping and channels as metric rules. Built in here: host offline and clock skew (from the
 * agent link) and certificate expiry (a TLS probe from the hub). Container and systemd anomalies
 * come from the agents' `containers` and `units` reports: modules/workloads registers its
 * `WorkloadSource` with `AlertService.addSource`:
 *
 *   level(host, 'container_unhealthy', containerName, 1 | 0)
 *   level(host, 'unit_failed', 'nginx.service', 1 | 0)
 *   levels(host, 'unit_failed', [{ subject: 'nginx.service', value: 1 }])   // the complete list: others are 0
 *   event(host, 'container_restart', containerName)      // counted over the rule's params.windowSec
 *   event(host, 'container_oom', containerName)
 */
import { connect, type PeerCertificate } from 'node:tls';
import type { AgentReach } from '../agents/link.js';
import { systemClock, type Clock } from '../../clock.js';
import type { HostStore } from '../hosts/store.js';

export interface AnomalySink {
  /** the current value of a level signal; `subject` names the thing inside the host ('' for the host itself) */
  level(hostId: string, signal: string, subject: string, value: number, detail?: string): void;
  /** one occurrence of an event */
  event(hostId: string, event: string, subject: string, at?: number, detail?: string): void;
  /**
   * Every subject of a level signal on one host that is not 0 right now: the others are 0. For a
   * source that sees the whole list each time (failed units), so that an alert the hub restored
   * after a restart, for a subject that recovered meanwhile, resolves too.
   */
  levels(hostId: string, signal: string, current: readonly { subject: string; value: number; detail?: string }[]): void;
}

export interface AnomalySource {
  readonly name: string;
  /** the level signals and events it feeds (see ANOMALIES in model.ts) */
  readonly feeds: string[];
  start(sink: AnomalySink): void;
  stop(): void;
}

const TS_REPORTS = new Set(['report.usage', 'report.processes', 'report.connections', 'report.sensors', 'report.gpu', 'report.self', 'report.static']);

/** Host offline and clock skew, from the agent link's events and the timestamps of live reports. */
export class LinkSource implements AnomalySource {
  readonly name = 'agent link';
  readonly feeds = ['host_offline', 'clock_skew_seconds'];
  private timer: NodeJS.Timeout | undefined;
  private readonly off: (() => void)[] = [];

  constructor(
    private readonly link: AgentReach,
    private readonly hosts: HostStore,
    /** after a hub start, agents are reconnecting: hosts are not called offline before this (real time) */
    private readonly graceMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  start(sink: AnomalySink): void {
    const on = (id: string) => sink.level(id, 'host_offline', '', 0);
    const off = (id: string) => sink.level(id, 'host_offline', '', 1);
    const msg = (conn: { agentId: string }, m: { type: string; body: unknown }) => {
      if (!TS_REPORTS.has(m.type)) return;
      const ts = (m.body as { ts?: unknown }).ts;
      // A report is sent as soon as it is taken; transit time is far below any useful threshold.
      if (typeof ts === 'number') {
        const now = this.clock.now();
        sink.level(conn.agentId, 'clock_skew_seconds', '', Math.abs(ts - now) / 1000, `agent clock ${ts > now ? 'ahead' : 'behind'}`);
      }
    };
    this.link.on('online', on);
    this.link.on('offline', off);
    this.link.on('message', msg);
    this.off.push(() => this.link.off('online', on), () => this.link.off('offline', off), () => this.link.off('message', msg));
    // Hosts that were offline when the hub started never send an offline event.
    this.timer = setTimeout(() => {
      void this.hosts
        .listBrief()
        .then((list) => {
          for (const h of list) if (h.revokedAt === null && !this.link.isOnline(h.id)) sink.level(h.id, 'host_offline', '', 1);
        })
        .catch(() => {});
    }, this.graceMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const f of this.off) f();
  }
}

/** Days until the certificate served at host:port expires (negative once expired). */
export function probeCertificate(endpoint: string, serverName: string | undefined, timeoutMs: number, now: () => number): Promise<{ daysLeft: number; subject: string; validTo: string }> {
  const i = endpoint.lastIndexOf(':');
  const host = endpoint.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(endpoint.slice(i + 1));
  return new Promise((resolve, reject) => {
    // Expiry is what is checked, not trust: a self-signed or already expired certificate must still be read.
    const sni = serverName ?? (/^[\d.:]+$/.test(host) ? undefined : host);
    const s = connect({ host, port, ...(sni ? { servername: sni } : {}), rejectUnauthorized: false, timeout: timeoutMs });
    const done = (err?: Error, cert?: PeerCertificate) => {
      s.destroy();
      if (err || !cert?.valid_to) return reject(err ?? new Error('no certificate presented'));
      resolve({ daysLeft: (Date.parse(cert.valid_to) - now()) / 86400_000, subject: [cert.subject?.CN ?? ''].flat().join(','), validTo: new Date(Date.parse(cert.valid_to)).toISOString() });
    };
    s.once('secureConnect', () => done(undefined, s.getPeerCertificate()));
    s.once('timeout', () => done(new Error('timed out')));
    s.once('error', (e) => done(e));
  });
}
