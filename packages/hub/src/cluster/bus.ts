/**
 * What passes between the hubs of a cluster goes over NATS (core request/reply and publish; an
 * existing engine, not a protocol of our own). The bus names every subject under the cluster's
 * prefix, so clusters (and test runs) share one NATS server without seeing each other.
 *
 * NATS down is a degraded cluster, not a dead hub: the hub starts (or keeps running) without it,
 * serves its own agents, says "cluster degraded" in its health, and the client reconnects for ever.
 * What a hub publishes while disconnected after a first connection is buffered by the client (8 MiB);
 * before a first connection it is dropped and counted. Presence is published again in full on every
 * (re)connection, so peers converge whatever was lost.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { connect, type NatsConnection, type Subscription, type Msg } from '@nats-io/transport-node';
import { RequestError, TimeoutError } from '@nats-io/transport-node';

export type BusState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface BusStats {
  published: number;
  received: number;
  requests: number;
  /** publications dropped because NATS had never been reached */
  dropped: number;
  reconnects: number;
}

/** Nobody subscribes to the subject: for an agent's subject, the agent is not connected anywhere. */
export class NoResponders extends Error {
  readonly code = 'no_responders';
}
export class BusTimeout extends Error {
  readonly code = 'bus_timeout';
}
export class BusDown extends Error {
  readonly code = 'cluster_degraded';
  constructor() {
    super('the cluster bus (NATS) is not reachable');
  }
}

/** An id that may stand as one subject token (agent ids, hub ids). */
export const SUBJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A NATS URL as shown in logs and the API: a user or password in it is replaced by `***`. */
export function redactNatsUrl(u: string): string {
  return u.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@');
}

/** Largest message a hub puts on the bus (NATS's default max_payload is 1 MiB). */
export const MAX_BUS_MESSAGE = 1024 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface BusEvents {
  state: [state: BusState];
}

export class ClusterBus extends EventEmitter<BusEvents> {
  private nc: NatsConnection | undefined;
  private readonly subs: { subject: string; queue?: string; handler: (data: unknown, msg: Msg) => void; sub?: Subscription }[] = [];
  private closed = false;
  state: BusState = 'connecting';
  /** why the bus is not connected, in words */
  lastError = '';
  readonly stats: BusStats = { published: 0, received: 0, requests: 0, dropped: 0, reconnects: 0 };

  constructor(
    readonly servers: string[],
    readonly prefix: string,
    private readonly name: string,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** Starts connecting; resolves once connected or after `waitMs`, whichever comes first (then it goes on trying). */
  async start(waitMs = 3000): Promise<void> {
    const first = this.connectLoop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([first, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  private async connectLoop(): Promise<void> {
    let delay = 500;
    while (!this.closed && !this.nc) {
      try {
        const nc = await connect({ servers: this.servers, name: this.name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, reconnectJitter: 500, pingInterval: 5000, maxPingOut: 2, timeout: 2000 });
        if (this.closed) {
          await nc.close();
          return;
        }
        this.nc = nc;
        for (const s of this.subs) this.attach(s);
        this.setState('connected');
        void this.watch(nc);
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        if (this.state !== 'disconnected') {
          this.log.warn({ servers: this.servers.map(redactNatsUrl), err: this.lastError }, 'cluster bus: NATS not reachable; serving local agents only until it is');
          this.setState('disconnected');
        }
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.lastError = 'disconnected from NATS';
        this.log.warn('cluster bus: disconnected from NATS; reconnecting');
        this.setState('disconnected');
      } else if (s.type === 'reconnect') {
        this.stats.reconnects++;
        this.log.info('cluster bus: reconnected to NATS');
        this.setState('connected');
      }
    }
    if (!this.closed) this.setState('closed');
  }

  private setState(s: BusState): void {
    if (this.state === s) return;
    this.state = s;
    if (s === 'connected') this.lastError = '';
    this.emit('state', s);
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** `prefix.a.b…`; each part must be one subject token (no dots, spaces or wildcards). */
  subject(...parts: string[]): string {
    for (const p of parts) if (!/^[A-Za-z0-9_*>-]+$/.test(p)) throw new Error(`not a subject token: ${JSON.stringify(p)}`);
    return [this.prefix, ...parts].join('.');
  }

  publish(subject: string, data: unknown): void {
    if (!this.nc) {
      this.stats.dropped++;
      return;
    }
    const bytes = enc.encode(JSON.stringify(data));
    if (bytes.length > MAX_BUS_MESSAGE) throw new Error(`bus message of ${bytes.length} bytes exceeds ${MAX_BUS_MESSAGE}`);
    this.stats.published++;
    try {
      this.nc.publish(subject, bytes);
    } catch (err) {
      this.stats.dropped++;
      this.log.debug({ subject, err: (err as Error).message }, 'cluster bus: publish failed');
    }
  }

  /**
   * Subscribes for the life of the bus (kept across reconnections and made on the first connection
   * when called before it). A queue group delivers each message to one member only. Returns an
   * unsubscribe function.
   */
  subscribe(subject: string, handler: (data: unknown, msg: Msg) => void, opts: { queue?: string } = {}): () => void {
    const s: (typeof this.subs)[number] = { subject, handler, ...(opts.queue ? { queue: opts.queue } : {}) };
    this.subs.push(s);
    if (this.nc) this.attach(s);
    return () => {
      const i = this.subs.indexOf(s);
      if (i >= 0) this.subs.splice(i, 1);
      s.sub?.unsubscribe();
    };
  }

  private attach(s: (typeof this.subs)[number]): void {
    s.sub = this.nc!.subscribe(s.subject, {
      ...(s.queue ? { queue: s.queue } : {}),
      callback: (err, msg) => {
        if (err) return;
        this.stats.received++;
        let data: unknown;
        try {
          data = msg.data.length ? JSON.parse(dec.decode(msg.data)) : undefined;
        } catch {
          this.log.warn({ subject: msg.subject }, 'cluster bus: a message that is not JSON, ignored');
          return;
        }
        try {
          s.handler(data, msg);
        } catch (e) {
          this.log.error({ subject: msg.subject, err: (e as Error).message }, 'cluster bus: handler failed');
        }
      },
    });
  }

  /** Answers a request received by a subscription handler. */
  reply(msg: Msg, data: unknown): void {
    if (!msg.reply) return;
    try {
      msg.respond(enc.encode(JSON.stringify(data)));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cluster bus: reply failed');
    }
  }

  /** Request/reply. Rejects with NoResponders (at once) when nobody listens, BusTimeout, or BusDown. */
  async request(subject: string, data: unknown, timeoutMs: number): Promise<unknown> {
    if (!this.nc || !this.connected) throw new BusDown();
    this.stats.requests++;
    try {
      const m = await this.nc.request(subject, enc.encode(JSON.stringify(data)), { timeout: timeoutMs });
      return m.data.length ? JSON.parse(dec.decode(m.data)) : undefined;
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders()) throw new NoResponders(`no responders on ${subject}`);
      if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) throw new BusTimeout(`no answer on ${subject} within ${timeoutMs} ms`);
      throw err;
    }
  }

  /** Waits until what was published has reached the server (or `ms` passed). */
  async flush(ms = 2000): Promise<void> {
    if (!this.nc || !this.connected) return;
    await Promise.race([this.nc.flush(), new Promise((r) => setTimeout(r, ms).unref())]).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.nc;
    this.nc = undefined;
    this.setState('closed');
    if (nc) await Promise.race([nc.drain().catch(() => nc.close()), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
