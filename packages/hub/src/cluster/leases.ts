/**
 * Singletons: the work that must run on exactly one hub at a time (alert evaluation and
 * notification, metric compaction and retention, pruning) runs only while this hub holds its lease.
 *
 * One hub alone holds every lease for good (`SoloLeases`). In a cluster (`ClusterLeases`) a lease is
 * a row in the shared PostgreSQL with a holder, an expiry on the database's clock and an epoch that
 * grows with every change of holder (a fencing token). Each hub tries to take or renew every lease
 * every `renewMs`; a lease lasts `ttlMs`. A holder that cannot confirm a renewal within
 * `ttlMs − renewMs` of sending it (database away, event loop stalled) gives the lease up on its own
 * before anyone else can take it, so two hubs never both believe they hold it. A hub killed outright
 * leaves its lease to expire: another takes it within ttl + renew (6 + 1.5 s by default). A hub that
 * stops releases its leases first, and another takes them at its next attempt.
 *
 * Not PostgreSQL advisory locks: held through a pool, they are lost silently when a connection is
 * recycled (see the peers notes).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ClusterStore } from './store.js';

/** The singletons of a hub, by lease name. */
export const LEASES = {
  /** the alert evaluator and its notifier */
  alerts: 'alerts',
  /** metric compaction and retention, session pruning */
  maintenance: 'maintenance',
  /** the job scheduler: every running job's strategy, dispatch, results and sweeps */
  jobs: 'jobs',
} as const;
export type LeaseName = (typeof LEASES)[keyof typeof LEASES];

export interface LeaseEvents {
  gained: [name: LeaseName, epoch: number];
  lost: [name: LeaseName, why: string];
}

/** What the rest of the hub sees of the leases. */
export interface Leases extends EventEmitter<LeaseEvents> {
  holds(name: LeaseName): boolean;
  /** the fencing token of a held lease */
  epoch(name: LeaseName): number | undefined;
  /** gives every lease up (stop, drain) */
  releaseAll(): Promise<void>;
  stop(): Promise<void>;
}

/** One hub: it is every singleton. */
export class SoloLeases extends EventEmitter<LeaseEvents> implements Leases {
  holds(): boolean {
    return true;
  }
  epoch(): number {
    return 0;
  }
  async releaseAll(): Promise<void> {}
  async stop(): Promise<void> {}
}

interface Held {
  epoch: number;
  /** performance.now() when the renewal that confirmed it was sent */
  confirmedFrom: number;
}

export class ClusterLeases extends EventEmitter<LeaseEvents> implements Leases {
  private readonly held = new Map<LeaseName, Held>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private released = false;

  constructor(
    private readonly store: ClusterStore,
    private readonly hubId: string,
    private readonly log: Logger,
    private readonly o: { ttlMs: number; renewMs: number; names?: LeaseName[] } = { ttlMs: 6000, renewMs: 1500 },
  ) {
    super();
    this.setMaxListeners(0);
    if (o.renewMs * 2 > o.ttlMs) throw new Error('lease renewal must be at most half the lease time');
  }

  private get names(): LeaseName[] {
    return this.o.names ?? (Object.values(LEASES) as LeaseName[]);
  }

  holds(name: LeaseName): boolean {
    const h = this.held.get(name);
    if (!h) return false;
    // Checked on every read too, not only by the timer: a stalled loop must not act on a stale lease.
    if (performance.now() - h.confirmedFrom > this.o.ttlMs - this.o.renewMs) {
      this.drop(name, 'renewal not confirmed in time');
      return false;
    }
    return true;
  }

  epoch(name: LeaseName): number | undefined {
    return this.holds(name) ? this.held.get(name)!.epoch : undefined;
  }

  /** Runs the first round now (so a hub alone in its cluster starts as every singleton), then every renewMs. */
  async start(): Promise<void> {
    await this.round();
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.round().finally(() => (this.running = undefined));
    }, this.o.renewMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    if (this.stopped || this.released) return;
    for (const name of this.names) {
      const sent = performance.now();
      try {
        const epoch = await this.store.acquire(name, this.hubId, this.o.ttlMs);
        if (this.stopped || this.released) return;
        if (epoch === undefined) {
          if (this.held.has(name)) this.drop(name, 'another hub holds it');
          continue;
        }
        const prev = this.held.get(name);
        if (prev && prev.epoch !== epoch) this.drop(name, 'lease changed hands while this hub was away');
        const had = this.held.has(name);
        this.held.set(name, { epoch, confirmedFrom: sent });
        if (!had) {
          this.log.info({ lease: name, epoch }, 'lease gained: this hub runs the singleton');
          this.emit('gained', name, epoch);
        }
      } catch (err) {
        this.log.warn({ lease: name, err: (err as Error).message }, 'lease renewal failed');
        this.holds(name); // drops it once the confirmation is too old
      }
    }
  }

  private drop(name: LeaseName, why: string): void {
    if (!this.held.delete(name)) return;
    this.log.warn({ lease: name, why }, 'lease lost: this hub no longer runs the singleton');
    this.emit('lost', name, why);
  }

  async releaseAll(): Promise<void> {
    this.released = true;
    await this.running;
    for (const name of [...this.held.keys()]) {
      this.drop(name, 'released');
      await this.store.release(name, this.hubId).catch((err: Error) => this.log.warn({ lease: name, err: err.message }, 'lease release failed (it expires instead)'));
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.releaseAll();
    this.stopped = true;
  }
}
