/**
 * The job scheduler's view of a cluster's agents (`JobAgents` for modules/jobs): one scheduler, on
 * the hub holding the jobs lease, drives every job; the agents it sends to may be held by any hub.
 *
 *  - to an agent held elsewhere, `task.start`, `task.kill`, `task.ack` and `task.resync` go as
 *    `<prefix>.agent.<id>.send`, which the holding hub writes to the agent's socket;
 *  - the task messages of an agent (`task.sync`, `task.accepted`, `task.output`, `task.result`)
 *    reach the scheduler: directly on its own hub, as `<prefix>.jobs.agent` from the others.
 *
 * Core NATS delivers at most once. Nothing is lost for that: a result is acknowledged only after the
 * scheduler commits it, so an agent keeps and re-sends what did not arrive (on reconnecting, or when
 * a new scheduler asks every agent to resync); a `task.start` that did not arrive leaves its task
 * `sent`, and the agent's next sync, which does not list it, has it sent again.
 */
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Message, MessageType } from '@tether/protocol';
import type { AgentLink, AgentPort } from '../modules/agents/link.js';
import type { ClusterBus } from './bus.js';
import type { Leases } from './leases.js';
import type { ClusterReach } from './reach.js';
import { ClusterStore } from './store.js';

/** What an agent's hub passes on to the scheduler. */
export const TASK_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>(['task.sync', 'task.accepted', 'task.output', 'task.result']);

export class LeaseLost extends Error {
  readonly code = 'lease_lost';
}

interface Forwarded {
  agentId: string;
  msg: Message;
}

/** modules/jobs' JobAgents and JobCluster, for a cluster. */
export class ClusterJobAgents extends EventEmitter {
  readonly stats = { forwardedIn: 0, forwardedOut: 0 };

  constructor(
    private readonly link: AgentLink,
    private readonly reach: ClusterReach,
    readonly bus: ClusterBus,
    readonly leases: Leases,
    private readonly hubId: string,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    reach.on('online', (id) => this.emit('online', id));
    reach.on('offline', (id, why) => this.emit('offline', id, why));
    link.on('message', (conn, msg) => {
      if (!TASK_MESSAGES.has(msg.type)) return;
      if (this.leases.holds('jobs')) this.emit('message', conn, msg);
      else {
        this.stats.forwardedOut++;
        reach.flushPresence();
        bus.publish(bus.subject('jobs', 'agent'), { agentId: conn.agentId, msg } satisfies Forwarded);
      }
    });
    bus.subscribe(bus.subject('jobs', 'agent'), (d) => {
      const f = d as Forwarded;
      if (!this.leases.holds('jobs') || !f || typeof f.agentId !== 'string' || !f.msg || !TASK_MESSAGES.has(f.msg.type)) return;
      this.stats.forwardedIn++;
      this.emit('message', this.port(f.agentId), f.msg);
    });
    // The new scheduler's call: each hub asks its own agents.
    bus.subscribe(bus.subject('jobs', 'resync'), () => {
      for (const id of this.link.onlineIds()) this.link.get(id)?.send('task.resync', {});
    });
  }

  get(agentId: string): AgentPort | undefined {
    return this.reach.port(agentId);
  }

  isOnline(agentId: string): boolean {
    return this.reach.isOnline(agentId);
  }

  /** An agent held by another hub (or one whose message came over the bus): sends go through its hub. */
  private port(agentId: string): AgentPort {
    return this.link.get(agentId) ?? this.reach.portVia(agentId);
  }

  async fence(tx: Kysely<any>, epoch: number): Promise<void> {
    if (!(await ClusterStore.stillHolds(tx, 'jobs', this.hubId, epoch))) throw new LeaseLost(`this hub no longer holds the job scheduler's lease (epoch ${epoch}); its changes are not written`);
  }

  resyncAll(): void {
    this.bus.publish(this.bus.subject('jobs', 'resync'), {});
    this.log.info('asked every agent of the cluster to resync its tasks');
  }
}
