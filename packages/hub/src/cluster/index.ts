/**
 * A hub's place in its cluster. One hub alone (`npm start`, SQLite): `soloCluster` — it holds
 * every lease, reaches only its own agents, needs no NATS. Several hubs (`--nats` with a shared
 * PostgreSQL): `joinCluster` checks that this hub may join (same sealing key, same protocol as the
 * live hubs), then runs its heartbeat row, the bus, presence and request forwarding, and the leases.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { PROTOCOL_VERSION, TETHER_VERSION } from '@tether/protocol';
import type { AgentLink, AgentReach } from '../modules/agents/link.js';
import type { SecretBox } from '../secret-box.js';
import { ClusterBus, SUBJECT_ID, redactNatsUrl, type BusState } from './bus.js';
import { ClusterLeases, LEASES, SoloLeases, type LeaseName, type Leases } from './leases.js';
import { ClusterJobAgents } from './jobs.js';
import { ClusterReach, type HubBeat } from './reach.js';
import { ClusterStore } from './store.js';

export { LEASES, type LeaseName, type Leases } from './leases.js';
export { clusterMigrations, ClusterStore } from './store.js';

export interface ClusterStatus {
  mode: 'single' | 'cluster';
  hubId: string;
  /** NATS, in a cluster */
  bus?: { state: BusState; servers: string[]; prefix: string; error?: string; stats: ClusterBus['stats'] };
  /** the live hubs (this one first) */
  hubs: HubBeat[];
  /** the singletons this hub runs now */
  leases: LeaseName[];
  /** why the cluster is degraded, in words (empty when it is not) */
  degraded: string[];
}

export interface Cluster {
  readonly hubId: string;
  readonly mode: 'single' | 'cluster';
  /** reach any agent: this hub's link alone, or the whole cluster */
  readonly reach: AgentReach;
  readonly leases: Leases;
  /** the bus, in a cluster */
  readonly bus?: ClusterBus;
  /** the job scheduler's agents and fencing, in a cluster */
  readonly jobAgents?: ClusterJobAgents;
  /** presence and forwarding, in a cluster */
  readonly clusterReach?: ClusterReach;
  status(): ClusterStatus;
  /** stop taking singletons and tell the others this hub is leaving; its agents are closed by the link afterwards */
  leave(): Promise<void>;
  /**
   * Drains hub `id` (this one or another, over the bus) for an upgrade: it gives its singletons
   * up, takes no new agents and moves its agents to the other hubs. Resolves with how many moved.
   */
  drain(id: string): Promise<{ hub: string; moved: number }>;
  stop(): Promise<void>;
}

export class ClusterJoinRefused extends Error {}

export function soloCluster(link: AgentLink): Cluster {
  const leases = new SoloLeases();
  const hubId = 'solo';
  return {
    hubId,
    mode: 'single',
    reach: link,
    leases,
    status: () => ({ mode: 'single', hubId, hubs: [], leases: Object.values(LEASES), degraded: [] }),
    leave: async () => {},
    drain: async () => {
      throw Object.assign(new Error('this hub is not in a cluster: there is no other hub to move its agents to'), { statusCode: 409 });
    },
    stop: async () => {},
  };
}

export interface JoinOptions {
  nats: string[];
  prefix: string;
  db: Kysely<any>;
  link: AgentLink;
  secrets: SecretBox;
  /** where agents and browsers reach this hub (known once it listens) */
  url: () => string;
  log: Logger;
  /** lease timing (tests shorten it); default 6 s lease renewed every 1.5 s */
  lease?: { ttlMs: number; renewMs: number };
  /** the protocol this hub speaks (tests pretend another) */
  protocol?: number;
}

const ROW_BEAT_MS = 2000;
const ROW_LIVE_MS = 10_000;

export async function joinCluster(o: JoinOptions): Promise<Cluster> {
  const log = o.log;
  const store = new ClusterStore(o.db);
  const protocol = o.protocol ?? PROTOCOL_VERSION;
  const hubId = `${hostname().replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-${randomBytes(4).toString('hex')}`;

  // Everything sealed in the database must open on every hub.
  const agreedKey = await store.agreeOn('secret_key_id', o.secrets.keyId);
  if (agreedKey !== o.secrets.keyId) {
    throw new ClusterJoinRefused(`this hub's ${o.secrets.keyFile} is key ${o.secrets.keyId}, but the hubs of this database use key ${agreedKey}: every hub of a cluster needs the same key file (copy it from one of them)`);
  }
  const others = (await store.live(ROW_LIVE_MS)).filter((h) => h.protocol !== protocol);
  if (others.length) {
    const list = others.map((h) => `${h.id} (${h.url}, version ${h.version}, protocol ${h.protocol})`).join(', ');
    throw new ClusterJoinRefused(`this hub speaks protocol ${protocol} (version ${TETHER_VERSION}), but live hubs of this cluster speak another: ${list}. Hubs of one cluster run one protocol: upgrade them together (drain one, upgrade it, and so on within a protocol) or start this one against another database`);
  }
  const pruned = await store.prune(3600_000);
  if (pruned) log.info({ pruned }, 'cluster: removed rows of hubs gone for an hour');

  const me = {
    id: hubId,
    get url() {
      return o.url();
    },
    version: TETHER_VERSION,
    protocol,
  };
  let draining = false;
  const writeRow = () => store.beat({ id: hubId, url: me.url, version: me.version, protocol, agents: o.link.onlineCount, draining });
  await writeRow();
  const rowTimer = setInterval(() => void writeRow().catch((err: Error) => log.warn({ err: err.message }, 'cluster: heartbeat row not written')), ROW_BEAT_MS);
  rowTimer.unref();

  const bus = new ClusterBus(o.nats, o.prefix, `tether-hub ${hubId}`, log.child({ part: 'bus' }));
  await bus.start();
  const reach = new ClusterReach(o.link, bus, me, log.child({ part: 'reach' }));
  reach.start();
  const leases = new ClusterLeases(store, hubId, log.child({ part: 'leases' }), o.lease ?? { ttlMs: 6000, renewMs: 1500 });
  const jobAgents = new ClusterJobAgents(o.link, reach, bus, leases, hubId, log.child({ part: 'jobs' }));
  await leases.start();
  const held = () => (Object.values(LEASES) as LeaseName[]).filter((n) => leases.holds(n));
  log.info({ hubId, nats: o.nats.map(redactNatsUrl), prefix: o.prefix, bus: bus.state, leases: held() }, 'joined the cluster');

  const drainHere = async () => {
    draining = true;
    await leases.releaseAll();
    const moved = await reach.drain();
    await writeRow().catch(() => {});
    return { hub: hubId, moved };
  };
  bus.subscribe(bus.subject('hub', hubId, 'drain'), (_d, msg) => {
    void drainHere().then(
      (r) => bus.reply(msg, r),
      (err: Error) => bus.reply(msg, { error: err.message }),
    );
  });

  let left = false;
  const leave = async () => {
    if (left) return;
    left = true;
    draining = true;
    await leases.releaseAll();
    await reach.stop();
  };
  return {
    hubId,
    mode: 'cluster',
    reach,
    leases,
    bus,
    jobAgents,
    clusterReach: reach,
    status: () => {
      const degraded: string[] = [];
      if (!bus.connected) degraded.push(`cluster degraded: NATS unreachable (${bus.lastError || bus.state}); serving this hub's own agents only`);
      return {
        mode: 'cluster',
        hubId,
        bus: { state: bus.state, servers: bus.servers.map(redactNatsUrl), prefix: bus.prefix, ...(bus.lastError ? { error: bus.lastError } : {}), stats: { ...bus.stats } },
        hubs: reach.hubs(),
        leases: held(),
        degraded,
      };
    },
    leave,
    drain: async (id: string) => {
      if (id === hubId) return drainHere();
      if (!SUBJECT_ID.test(id) || !reach.hubs().some((h) => h.id === id)) throw Object.assign(new Error(`no live hub ${id} in this cluster`), { statusCode: 404 });
      const r = (await bus.request(bus.subject('hub', id, 'drain'), {}, 60_000)) as { hub: string; moved: number; error?: string };
      if (r.error) throw Object.assign(new Error(r.error), { statusCode: 502 });
      return r;
    },
    stop: async () => {
      await leave();
      await leases.stop();
      clearInterval(rowTimer);
      await store.leave(hubId).catch(() => {});
      await bus.close();
    },
  };
}
