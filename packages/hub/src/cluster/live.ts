/**
 * Live metrics across hubs: a browser on hub A sees the samples of agents held by hubs B and C.
 * A hub with live clients says so in its beat (`watching`) and subscribes to `<prefix>.live`; every
 * hub publishes its agents' samples there only while some other hub watches, so a cluster where
 * nobody has the console open spends nothing on it. Online/offline changes come from presence.
 */
import type { MetricsService } from '../modules/metrics/service.js';
import type { LiveHub } from '../modules/metrics/live.js';
import type { SeriesKind } from '../modules/metrics/series.js';
import type { ClusterBus } from './bus.js';
import type { ClusterReach } from './reach.js';

interface LiveMsg {
  hub: string;
  h: string;
  k: SeriesKind;
  ts: number;
  s: Record<string, number>;
}

export function relayLive(metrics: MetricsService, live: LiveHub, reach: ClusterReach, bus: ClusterBus, hubId: string): void {
  const subject = bus.subject('live');
  metrics.on('sample', (hostId, kind, ts, series) => {
    if (reach.peersWatching()) bus.publish(subject, { hub: hubId, h: hostId, k: kind as SeriesKind, ts, s: series } satisfies LiveMsg);
  });
  let unsub: (() => void) | undefined;
  live.onClients = (n) => {
    reach.setWatching(n > 0);
    if (n > 0 && !unsub) {
      unsub = bus.subscribe(subject, (d) => {
        const m = d as LiveMsg;
        if (!m || m.hub === hubId || typeof m.h !== 'string' || typeof m.s !== 'object' || m.s === null) return;
        live.remoteSample(m.h, m.k, Number(m.ts), m.s);
      });
    } else if (n === 0 && unsub) {
      unsub();
      unsub = undefined;
    }
  };
}
