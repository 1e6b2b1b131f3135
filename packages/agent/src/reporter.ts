/**
 * Runs the collectors and sends what they produce. Only with the `metrics` capability.
 * While the link is down, usage samples go into a bounded buffer (oldest dropped first) and are
 * sent as a backlog after reconnecting, so a short partition leaves no hole in the history.
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
      selfStats: () => ({ reconnects: agent.stats.reconnects, backlog: this.backlog.length, sent: this.stats.sent, dropped: this.stats.dropped }),
    });
    agent.on('connected', () => this.onConnected());
  }

  get backlogLength(): number {
    return this.backlog.length;
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

  /** Sends one body if it is valid and fits in a frame. */
  private sendChecked(type: MessageType, body: unknown): boolean {
    if (!checkBody(type, body)) {
      this.stats.invalid++;
      this.log.error({ type }, 'collector output does not match its schema; not sent');
      return true; // not a link problem: do not buffer it
    }
    if (encodeFrame(type, body).length > MAX_FRAME_BYTES) {
      this.stats.oversize++;
      this.log.warn({ type }, 'report larger than a frame; not sent');
      return true;
    }
    const ok = this.agent.send(type, body as never);
    if (ok) this.stats.sent++;
    return ok;
  }

  private onData<N extends CollectorName>(name: N, data: CollectorOutputs[N]): void {
    if (name === 'static') this.lastStatic = data as CollectorOutputs['static'];
    const sent = this.sendChecked(`report.${name}` as MessageType, data);
    if (sent) return;
    if (name === 'usage') {
      this.backlog.push(data as HostUsage);
      if (this.backlog.length > this.backlogMax) {
        this.backlog.shift();
        this.stats.dropped++;
      }
    } else this.stats.dropped++;
  }

  private onConnected(): void {
    if (this.lastStatic) this.sendChecked('report.static', this.lastStatic);
    if (!this.backlog.length) return;
    const n = this.backlog.length;
    while (this.backlog.length) {
      const chunk = this.backlog.slice(0, MAX_BACKLOG_PER_FRAME);
      if (!this.sendChecked('report.backlog', { samples: chunk })) break;
      this.backlog.splice(0, chunk.length);
      this.stats.backlogSent += chunk.length;
    }
    this.log.info({ samples: n - this.backlog.length }, 'sent usage samples buffered while disconnected');
  }
}
