/**
 * From state changes to messages: changes of one rule are gathered for the rule's group window and
 * sent as one message per channel (ten hosts filling their disks make one email, not ten). Each
 * channel's delivery runs on its own with retries and exponential backoff, so a receiver that is
 * down delays nobody else; every attempt is written to the delivery log.
 */
import { systemClock, type Clock, type ClockTimer } from '../../clock.js';
import type { Logger } from 'pino';
import { scrub, secretStrings, send, type OutMessage, type SendResult } from './channels.js';
import { SEVERITY_RANK, type Rule, type Severity } from './model.js';
import { newId, type AlertStore, type Channel, type Delivery } from './store.js';

/** An alert as the API, the live stream and notifications show it. */
export interface AlertView {
  /** the history row id once it fired; `p_…` while pending */
  id: string;
  ruleId: string;
  ruleName: string;
  severity: Severity;
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

export interface NotifierOptions {
  retryBaseMs: number;
  maxAttempts: number;
  sendTimeoutMs: number;
  hubUrl?: string;
  /** the hub's clock: group windows and delivery times (retry delays and send timeouts are real time) */
  clock?: Clock;
}

interface Entry {
  view: AlertView;
  kind: 'firing' | 'resolved';
  /** decides at send time: false drops the entry (silenced, or a resolved whose firing was never sent) */
  admit: () => boolean;
}

const fmt = (v: number | null) => (v === null ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toFixed(2)).toString());
const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'));
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function line(a: AlertView): string {
  const what = a.subject ? `${a.subject} ` : '';
  const where = a.hostname || a.hostId || 'fleet';
  if (a.state === 'resolved') return `${where}: ${what}resolved at ${iso(a.endedAt)} (peak ${fmt(a.peak)}, since ${iso(a.firedAt)})`;
  return `${where}: ${what}= ${fmt(a.value)} (${a.op} ${fmt(a.threshold)}) since ${iso(a.startedAt)}${a.detail ? ` — ${a.detail}` : ''}`;
}

export function buildMessage(rule: Pick<Rule, 'id' | 'name' | 'severity'>, firing: AlertView[], resolved: AlertView[], deliveryId: string, hubUrl: string | undefined, now: number): OutMessage {
  const kind = firing.length ? 'firing' : 'resolved';
  const parts = [firing.length ? `FIRING ${firing.length}` : '', resolved.length ? `RESOLVED ${resolved.length}` : ''].filter(Boolean).join(', ');
  const title = `[${parts}] ${rule.name} (${rule.severity})`;
  const sections: [string, AlertView[]][] = [
    ['Firing', firing],
    ['Resolved', resolved],
  ];
  const text = sections
    .filter(([, l]) => l.length)
    .map(([h, l]) => `${h}:\n${l.map((a) => `  - ${line(a)}`).join('\n')}`)
    .join('\n\n');
  const footer = hubUrl ? `\n\nTether hub: ${hubUrl}` : '';
  const markdown = `**${title}**\n\n` + sections.filter(([, l]) => l.length).map(([h, l]) => `**${h}**\n\n${l.map((a) => `- ${line(a)}`).join('\n')}`).join('\n\n') + footer;
  const html =
    `<h3>${esc(title)}</h3>` +
    sections
      .filter(([, l]) => l.length)
      .map(([h, l]) => `<p><b>${h}</b></p><ul>${l.map((a) => `<li>${esc(line(a))}</li>`).join('')}</ul>`)
      .join('') +
    (hubUrl ? `<p>Tether hub: ${esc(hubUrl)}</p>` : '');
  return {
    kind,
    deliveryId,
    title,
    text: `${title}\n\n${text}${footer}`,
    markdown,
    html,
    payload: { version: 1, kind, deliveryId, sentAt: now, rule: { id: rule.id, name: rule.name, severity: rule.severity }, title, firing, resolved, ...(hubUrl ? { hub: hubUrl } : {}) },
  };
}

export function testMessage(c: Channel, deliveryId: string, hubUrl: string | undefined, now: number): OutMessage {
  const title = `[TEST] Tether channel ${c.name}`;
  const text = `This is a test notification from Tether for the ${c.type} channel "${c.name}".`;
  return {
    kind: 'test',
    deliveryId,
    title,
    text: `${title}\n\n${text}`,
    markdown: `**${title}**\n\n${text}`,
    html: `<h3>${esc(title)}</h3><p>${esc(text)}</p>`,
    payload: { version: 1, kind: 'test', deliveryId, sentAt: now, rule: null, title, firing: [], resolved: [], ...(hubUrl ? { hub: hubUrl } : {}) },
  };
}

export class Notifier {
  private readonly groups = new Map<string, { rule: Rule; entries: Entry[]; timer: ClockTimer }>();
  private readonly retries = new Map<NodeJS.Timeout, () => void>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;
  readonly stats = { sent: 0, failedAttempts: 0, failed: 0, suppressed: 0 };

  constructor(
    private readonly store: AlertStore,
    private readonly channels: () => Channel[],
    private readonly log: Logger,
    private readonly o: NotifierOptions,
  ) {
    this.clock = o.clock ?? systemClock;
  }

  private readonly clock: Clock;

  enqueue(rule: Rule, view: AlertView, kind: 'firing' | 'resolved', admit: () => boolean): void {
    if (this.closed) return;
    let g = this.groups.get(rule.id);
    if (!g) {
      const timer = this.clock.setTimeout(() => this.flush(rule.id), rule.groupWindowSec * 1000);
      this.groups.set(rule.id, (g = { rule, entries: [], timer }));
    }
    g.rule = rule;
    // The latest word on an instance replaces an earlier one in the same window.
    g.entries = g.entries.filter((e) => !(e.view.hostId === view.hostId && e.view.subject === view.subject && e.kind === kind));
    g.entries.push({ view, kind, admit });
  }

  /** Sends what a rule gathered. */
  flush(ruleId: string): void {
    const g = this.groups.get(ruleId);
    if (!g) return;
    this.groups.delete(ruleId);
    g.timer.cancel();
    const admitted = g.entries.filter((e) => e.admit());
    this.stats.suppressed += g.entries.length - admitted.length;
    const firing = admitted.filter((e) => e.kind === 'firing').map((e) => e.view);
    const resolved = admitted.filter((e) => e.kind === 'resolved').map((e) => e.view);
    if (!firing.length && !resolved.length) return;
    const rule = g.rule;
    const targets = this.channels().filter((c) => c.enabled && (rule.channels.length ? rule.channels.includes(c.id) : true) && SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[(c.config.minSeverity as Severity | undefined) ?? 'info']);
    for (const c of targets) {
      const id = newId('dl');
      const m = buildMessage(rule, firing, resolved, id, this.o.hubUrl, this.clock.now());
      this.track(this.deliver(c, m, rule.id, [...firing, ...resolved].map((a) => a.id)));
    }
  }

  /** One test message, one attempt; the caller sees the result. */
  async test(c: Channel): Promise<Delivery> {
    const id = newId('dl');
    return this.attempt(c, testMessage(c, id, this.o.hubUrl, this.clock.now()), null, [], 1, this.clock.now(), 1);
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async deliver(c: Channel, m: OutMessage, ruleId: string, alertIds: string[]): Promise<void> {
    const createdAt = this.clock.now();
    let attempt = 1;
    for (;;) {
      const d = await this.attempt(c, m, ruleId, alertIds, attempt, createdAt, this.o.maxAttempts);
      if (d.status !== 'retrying' || this.closed) return;
      const delay = Math.min(this.o.retryBaseMs * 2 ** (attempt - 1), 10 * 60_000);
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          this.retries.delete(t);
          r();
        }, delay);
        t.unref();
        this.retries.set(t, r);
      });
      if (this.closed) return;
      // The channel may have been edited or removed meanwhile.
      const now = this.channels().find((x) => x.id === c.id);
      if (!now) return;
      c = now;
      attempt++;
    }
  }

  private async attempt(c: Channel, m: OutMessage, ruleId: string | null, alertIds: string[], attempt: number, createdAt: number, maxAttempts: number): Promise<Delivery> {
    const d: Delivery = { id: m.deliveryId, channelId: c.id, channelName: c.name, ruleId, kind: m.kind, status: 'pending', attempts: attempt, lastError: null, responseStatus: null, alertIds, title: m.title, createdAt, updatedAt: this.clock.now() };
    let r: SendResult | undefined;
    try {
      r = await send(c, m, this.o.sendTimeoutMs, this.clock.now());
      d.status = 'ok';
      d.responseStatus = r.status ?? null;
      this.stats.sent++;
    } catch (err) {
      const e = err as Error & { status?: number; cause?: Error };
      d.lastError = scrub(`${e.message}${e.cause?.message ? `: ${e.cause.message}` : ''}`, secretStrings(c));
      d.responseStatus = e.status ?? null;
      d.status = attempt >= maxAttempts ? 'failed' : 'retrying';
      this.stats.failedAttempts++;
      if (d.status === 'failed') this.stats.failed++;
      this.log.warn({ channelId: c.id, type: c.type, deliveryId: d.id, attempt, err: d.lastError }, d.status === 'failed' ? 'alert delivery failed; giving up' : 'alert delivery failed; will retry');
    }
    d.updatedAt = this.clock.now();
    try {
      await this.store.putDelivery(d);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'delivery log write failed');
    }
    return d;
  }

  /** Sends what is gathered now and waits for first attempts in flight; pending retries are dropped. */
  async close(): Promise<void> {
    for (const id of [...this.groups.keys()]) this.flush(id);
    this.closed = true;
    for (const [t, wake] of this.retries) {
      clearTimeout(t);
      wake();
    }
    this.retries.clear();
    await Promise.allSettled([...this.inFlight]);
  }
}
