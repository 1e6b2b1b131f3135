/**
 * Runs the collectors and sends what they produce. Only with the `metrics` capability.
 * Usage samples are delivered at least once: each stays in flight until the hub acknowledges it
 * as committed. When the link drops, unacknowledged samples and those taken while disconnected go
 * into a bounded buffer (oldest dropped first) and are sent as a backlog after reconnecting, so a
 * partition leaves no hole in the history. The hub ignores duplicates.
 */
import type { Logger } from 'pino';
import { MAX_BACKLOG_PER_FRAME, MAX_FRAME_BYTES, checkBody, encodeFrame, type HostUsage, type MessageType } from '@tether/protocol';
import { createCollectors, startCollectors, type CollectorName, type CollectorOutputs, type CollectorsOptions, type ScheduledCollector } from './collectors/index.js';
import type { Agent } from './agent.js';

export interface ReporterOptions {
  collectors?: CollectorsOptions;
  /** usage samples kept while disconnected: 720 = one hour at 5 s */
  backlogMax?: number;
}

export class Reporter {
  private readonly backlog: HostUsage[] = [];
  /** message id → usage samples sent but not yet acknowledged */
  private readonly inflight = new Map<string, HostUsage[]>();
  private readonly backlogMax: number;
  private stopCollectors: (() => void) | undefined;
  private lastStatic: CollectorOutputs['static'] | undefined;
  readonly collectors: ScheduledCollector[];
  readonly stats = { sent: 0, dropped: 0, backlogSent: 0, oversize: 0, invalid: 0 };

  constructor(
    private readonly agent: Agent,
    private readonly log: Logger,
    opts: ReporterOptions = {},
  ) {
    this.backlogMax = opts.backlogMax ?? 720;
    this.collectors = createCollectors({
      ...opts.collectors,
      selfStats: () => ({ reconnects: agent.stats.reconnects, bytesIn: agent.stats.bytesIn, bytesOut: agent.stats.bytesOut, backlog: this.backlog.length, sent: this.stats.sent, dropped: this.stats.dropped }),
    });
    agent.on('connected', () => this.onConnected());
    agent.on('disconnected', () => this.requeueInflight());
    agent.on('message', (msg) => {
      if (msg.type === 'ack' && msg.re) this.inflight.delete(msg.re);
    });
  }

  get backlogLength(): number {
    return this.backlog.length;
  }
  get inflightLength(): number {
    let n = 0;
    for (const v of this.inflight.values()) n += v.length;
    return n;
  }

  private pushBacklog(samples: HostUsage[]): void {
    const last = this.backlog[this.backlog.length - 1];
    this.backlog.push(...samples);
    // New samples arrive in time order; only requeued in-flight ones can land out of order.
    if (last && samples[0] && samples[0].ts < last.ts) this.backlog.sort((a, b) => a.ts - b.ts);
    while (this.backlog.length > this.backlogMax) {
      this.backlog.shift();
      this.stats.dropped++;
    }
  }

  /** Samples the hub never acknowledged go back to the buffer, in time order. */
  private requeueInflight(): void {
    const samples = [...this.inflight.values()].flat();
    this.inflight.clear();
    if (samples.length) this.pushBacklog(samples);
  }

  start(): void {
    this.log.info({ collectors: this.collectors.map((c) => `${c.name}@${c.intervalMs}ms`) }, 'collectors started');
    this.stopCollectors = startCollectors(
      this.collectors,
      (name, data) => this.onData(name, data),
      (name, err) => this.log.warn({ collector: name, err: (err as Error)?.message ?? String(err) }, 'collector failed'),
    );
  }

  stop(): void {
    this.stopCollectors?.();
  }

  /**
   * Sends one body if it is valid and fits in a frame. Returns the message id, `null` when the
   * body can never be sent (a bug or an oversized report: buffering it would not help), or
   * undefined when the link is down.
   */
  private sendChecked(type: MessageType, body: unknown): string | null | undefined {
    if (!checkBody(type, body)) {
      this.stats.invalid++;
      this.log.error({ type }, 'collector output does not match its schema; not sent');
      return null;
    }
    if (encodeFrame(type, body).length > MAX_FRAME_BYTES) {
      this.stats.oversize++;
      this.log.warn({ type }, 'report larger than a frame; not sent');
      return null;
    }
    const id = this.agent.send(type, body as never);
    if (id) this.stats.sent++;
    return id;
  }

  private onData<N extends CollectorName>(name: N, data: CollectorOutputs[N]): void {
    if (name === 'static') this.lastStatic = data as CollectorOutputs['static'];
    const id = this.sendChecked(`report.${name}` as MessageType, data);
    if (id === null) return;
    if (name !== 'usage') {
      if (id === undefined) this.stats.dropped++;
      return;
    }
    if (id) this.inflight.set(id, [data as HostUsage]);
    else this.pushBacklog([data as HostUsage]);
    // A hub that stops acknowledging is no different from a partition: bound what waits for it.
    if (this.inflightLength > this.backlogMax) this.requeueInflight();
  }

  private onConnected(): void {
    if (this.lastStatic) this.sendChecked('report.static', this.lastStatic);
    if (!this.backlog.length) return;
    const n = this.backlog.length;
    while (this.backlog.length) {
      const chunk = this.backlog.slice(0, MAX_BACKLOG_PER_FRAME);
      const id = this.sendChecked('report.backlog', { samples: chunk });
      if (id === undefined) break;
      this.backlog.splice(0, chunk.length);
      if (id) this.inflight.set(id, chunk);
      this.stats.backlogSent += chunk.length;
    }
    this.log.info({ samples: n - this.backlog.length }, 'sent usage samples buffered while disconnected');
  }
}
