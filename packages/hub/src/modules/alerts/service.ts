/**
 * The rules engine. Metric rules are evaluated on every ingested sample (MetricsService `sample`
 * events, plus series derived from them); anomaly rules on what sources report (AnomalySink). A
 * periodic tick advances durations, resolutions, staleness, event windows and certificate probes.
 * Firing and resolution are written to the history; notifications go through the Notifier
 * (grouping, silences at send time, channels with retries). One hub evaluates: with several hubs
 * later, one of them must hold the evaluator (a lease in the shared database).
 */
import { EventEmitter } from 'node:events';
import { createHash, X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { matchesSelector, parseSelector, SelectorError, type Labels, type Selector } from '@tether/protocol';
import type { AgentReach } from '../agents/link.js';
import type { ClusterBus } from '../../cluster/bus.js';
import type { Leases } from '../../cluster/leases.js';
import type { HostStore } from '../hosts/store.js';
import type { MetricsService } from '../metrics/service.js';
import { FAMILIES } from '../metrics/series.js';
import { compare, end, Instance, observe, OPS, tick, type EvalRule, type TransitionType } from './evaluator.js';
import { ANOMALIES, ANOMALY_TYPES, DERIVED, derive, HUB_ENDPOINT, parseMetric, PRESETS, presetId, SEVERITIES, type Rule, type RuleInput } from './model.js';
import { systemClock, type Clock } from '../../clock.js';
import type { Scheduler } from '../../scheduler.js';
import { LinkSource, probeCertificate, type AnomalySink, type AnomalySource } from './anomaly.js';
import { CHANNEL_TYPES, validateChannel } from './channels.js';
import { Notifier, type AlertView } from './notifier.js';
import { newId, type AlertRow, type AlertStore, type Channel, type ChannelType, type Delivery, type Silence } from './store.js';

/** What a hub that is not the evaluator sends it: one sink call or one filtered sample. */
interface PeerInput {
  t: 'sample' | 'level' | 'event' | 'levels' | 'batch';
  a: unknown[];
}

export interface AlertServiceOptions {
  /** how often durations, resolutions and event windows are advanced */
  evalIntervalMs: number;
  retryBaseMs: number;
  maxAttempts: number;
  sendTimeoutMs: number;
  certCheckIntervalMs: number;
  reconnectGraceMs: number;
  historyRetentionMs: number;
  /** this many firings of one instance within flapWindowSec: flapping (notifications held back) */
  flapCount: number;
  flapWindowSec: number;
  hubUrl?: string;
  /** the certificate the hub serves (PEM), read by cert_expiry rules on the endpoint `hub`; none: plain HTTP */
  hubCertificate?: string;
  clock?: Clock;
}

export const DEFAULT_ALERT_OPTIONS: AlertServiceOptions = {
  evalIntervalMs: 5000,
  retryBaseMs: 5000,
  maxAttempts: 6,
  sendTimeoutMs: 10_000,
  certCheckIntervalMs: 3600_000,
  reconnectGraceMs: 30_000,
  historyRetentionMs: 90 * 86400_000,
  flapCount: 4,
  flapWindowSec: 1800,
};

export class AlertError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Indexed {
  rule: Rule;
  eval: EvalRule;
  selector: Selector | null;
  family?: string;
  dim?: string;
}

export interface AlertEvents {
  change: [alert: AlertView];
}

/** Backlog samples (sent after a partition) describe the past: live state is judged on live data. */
const MAX_SAMPLE_AGE_MS = 5 * 60_000;

export class AlertService extends EventEmitter<AlertEvents> {
  private rules = new Map<string, Indexed>();
  private byFamily = new Map<string, Indexed[]>();
  /** whether an enabled rule reads a derived series (else usage samples skip computing them) */
  private derivedWatched = false;
  private byLevel = new Map<string, Indexed[]>();
  private byEvent = new Map<string, Indexed[]>();
  private channelList: Channel[] = [];
  private silenceList: Silence[] = [];
  readonly instances = new Map<string, Instance>();
  private readonly hostInfo = new Map<string, { hostname: string; labels: Labels; labelsJson: string; revoked: boolean }>();
  private readonly events = new Map<string, { hostId: string; event: string; subject: string; times: number[]; detail?: string }>();
  private readonly certDue = new Map<string, number>();
  private readonly sources: AnomalySource[] = [];
  private readonly dirtyPeaks = new Set<Instance>();
  readonly notifier: Notifier;
  private readonly clock: Clock;
  private lastPrune = 0;
  private lastPeakWrite = 0;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly sink: AnomalySink;
  private readonly onSample: (hostId: string, kind: string, ts: number, series: Record<string, number>, keys: readonly string[], values: Float64Array) => void;
  /**
   * For each series key list (shared by alike hosts, see metrics/intern.ts): which of its series a
   * rule reads, and which rules. Made once per list and rule set, so a report costs a few array
   * reads instead of splitting all of its ~150 keys into family and dimension.
   */
  private readonly plans = new WeakMap<readonly string[], { version: number; at: Int32Array; rules: Indexed[][] }>();
  private rulesVersion = 0;

  constructor(
    readonly store: AlertStore,
    private readonly metrics: MetricsService,
    private readonly link: AgentReach,
    private readonly hosts: HostStore,
    private readonly log: Logger,
    readonly o: AlertServiceOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.clock = o.clock ?? systemClock;
    this.notifier = new Notifier(store, () => this.channelList, log.child({ part: 'notifier' }), { retryBaseMs: o.retryBaseMs, maxAttempts: o.maxAttempts, sendTimeoutMs: o.sendTimeoutMs, clock: this.clock, ...(o.hubUrl ? { hubUrl: o.hubUrl } : {}) });
    // On a hub that is not the evaluator (a cluster's other hubs), what its agents' sources signal
    // and what its agents report goes to the evaluator over the bus instead (see `clustered`).
    this.sink = {
      level: (hostId, signal, subject, value, detail) => (this.evaluating ? this.onLevel(hostId, signal, subject, value, detail) : this.forward({ t: 'level', a: [hostId, signal, subject, value, detail] })),
      event: (hostId, event, subject, at, detail) => (this.evaluating ? this.onEvent(hostId, event, subject, at ?? this.now(), detail) : this.forward({ t: 'event', a: [hostId, event, subject, at ?? this.now(), detail] })),
      levels: (hostId, signal, current) => (this.evaluating ? this.onLevels(hostId, signal, current) : this.forward({ t: 'levels', a: [hostId, signal, current] })),
    };
    this.onSample = (hostId, kind, ts, series, keys, values) => (this.evaluating ? this.sample(hostId, kind, ts, series, keys, values) : this.forwardSample(hostId, kind, ts, series, keys, values));
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  private now(): number {
    return this.clock.now();
  }

  /** Loads rules and state, then evaluates on the scheduler's clock. */
  async start(scheduler: Scheduler): Promise<void> {
    const offered = await this.store.offerPresets(PRESETS, this.now());
    if (offered.length) this.log.info({ presets: offered }, 'preset rules added');
    this.index(await this.store.rules());
    this.channelList = await this.store.channels();
    this.silenceList = await this.store.silences();
    await this.refreshHosts();
    if (this.evaluating) await this.restore();
    this.metrics.on('sample', this.onSample);
    this.addSource(new LinkSource(this.link, this.hosts, this.o.reconnectGraceMs, this.clock));
    this.link.on('online', (id) => void this.refreshHost(id));
    scheduler.every('alerts.evaluate', this.o.evalIntervalMs, () => this.tickAll(), { lease: 'alerts' });
    scheduler.every('alerts.hosts', 15_000, () => this.refreshHosts());
  }

  // ---- one evaluator in a cluster ---------------------------------------------------------------

  /** false on a hub of a cluster that does not hold the alerts lease */
  private evaluating = true;
  private cluster: { bus: ClusterBus; leases: Leases } | undefined;

  /**
   * In a cluster the rules engine and its notifier run on the one hub holding the alerts lease.
   * The others forward their agents' samples (only the series some rule reads) and anomaly signals
   * to it, hand their API's rule, channel and silence changes to every hub, and ask it for the
   * active alerts; it publishes every alert change for their browsers. On gaining the lease a hub
   * reloads rules and the firing alerts from the database (notified ones are not notified again);
   * on losing it, it forgets its instances.
   */
  clustered(bus: ClusterBus, leases: Leases): void {
    this.cluster = { bus, leases };
    this.evaluating = leases.holds('alerts');
    if (!this.evaluating) this.instances.clear();
    const input = bus.subject('alerts', 'in');
    let unIn: (() => void) | undefined;
    let unActive: (() => void) | undefined;
    const lead = () => {
      unIn ??= bus.subscribe(input, (d) => this.fromPeer(d as PeerInput));
      unActive ??= bus.subscribe(bus.subject('alerts', 'active'), (_d, msg) => bus.reply(msg, this.active()));
    };
    const follow = () => {
      unIn?.();
      unActive?.();
      unIn = unActive = undefined;
    };
    if (this.evaluating) lead();
    leases.on('gained', (name) => {
      if (name !== 'alerts') return;
      void this.reload()
        .then(() => this.restore())
        .then(() => {
          this.evaluating = true;
          lead();
          this.log.info({ restored: this.instances.size }, 'alert evaluator active on this hub');
        })
        .catch((err: Error) => this.log.error({ err: err.message }, 'alert evaluator could not load its state'));
    });
    leases.on('lost', (name) => {
      if (name !== 'alerts') return;
      this.evaluating = false;
      follow();
      this.instances.clear();
      this.events.clear();
      this.dirtyPeaks.clear();
    });
    bus.subscribe(bus.subject('alerts', 'config'), () => void this.reload().catch((err: Error) => this.log.warn({ err: err.message }, 'alert configuration reload failed')));
    bus.subscribe(bus.subject('alerts', 'change'), (d) => {
      if (!this.evaluating) this.emit('change', d as AlertView);
    });
    this.on('change', (v) => {
      if (this.evaluating) bus.publish(bus.subject('alerts', 'change'), v);
    });
  }

  /** Inputs for the evaluator, sent in batches (one NATS message per 20 ms or 256 inputs, not per report). */
  private outbox: PeerInput[] = [];
  private outboxTimer: NodeJS.Timeout | undefined;
  private forward(m: PeerInput): void {
    if (!this.cluster) return;
    this.outbox.push(m);
    if (this.outbox.length >= 256) this.flushOutbox();
    else if (!this.outboxTimer) {
      this.outboxTimer = setTimeout(() => this.flushOutbox(), 20);
      this.outboxTimer.unref();
    }
  }
  private flushOutbox(): void {
    clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    if (!this.outbox.length || !this.cluster) return;
    const batch = this.outbox;
    this.outbox = [];
    this.cluster.bus.publish(this.cluster.bus.subject('alerts', 'in'), { t: 'batch', a: batch } satisfies PeerInput);
  }
  /** Key lists of forwarded samples, shared by alike hosts (so the per-list plan is made once). */
  private readonly peerKeys = new Map<string, string[]>();

  /** Only the series some rule reads leave the hub. */
  private forwardSample(hostId: string, kind: string, ts: number, series: Record<string, number>, keys: readonly string[], values: Float64Array): void {
    if (!this.cluster || !this.byFamily.size) return;
    const plan = this.planOf(keys);
    const out: Record<string, number> = {};
    let n = 0;
    for (let j = 0; j < plan.at.length; j++) {
      const i = plan.at[j]!;
      out[keys[i]!] = values[i]!;
      n++;
    }
    if (kind === 'usage' && this.derivedWatched) {
      const d = derive(series);
      for (const k in d) if (this.rulesReading(k)) (out[k] = d[k]!), n++;
    }
    if (n) this.forward({ t: 'sample', a: [hostId, kind, ts, out] });
  }

  private fromPeer(m: PeerInput): void {
    if (!this.evaluating || !m || !Array.isArray(m.a)) return;
    const a = m.a as any[];
    switch (m.t) {
      case 'batch':
        for (const x of a.slice(0, 10_000)) if (x && (x as PeerInput).t !== 'batch') this.fromPeer(x as PeerInput);
        return;
      case 'sample': {
        const series = a[3] as Record<string, number>;
        if (!series || typeof series !== 'object') return;
        const fresh = Object.keys(series);
        const sig = fresh.join('\n');
        let keys = this.peerKeys.get(sig);
        if (!keys) {
          if (this.peerKeys.size >= 1000) this.peerKeys.clear();
          this.peerKeys.set(sig, (keys = fresh));
        }
        const values = Float64Array.from(keys, (k) => Number(series[k]));
        this.sample(String(a[0]), String(a[1]), Number(a[2]), {}, keys, values);
        return;
      }
      case 'level':
        return this.onLevel(String(a[0]), String(a[1]), String(a[2]), Number(a[3]), a[4] === undefined || a[4] === null ? undefined : String(a[4]));
      case 'event':
        return this.onEvent(String(a[0]), String(a[1]), String(a[2]), Number(a[3]), a[4] === undefined || a[4] === null ? undefined : String(a[4]));
      case 'levels':
        if (Array.isArray(a[2])) this.onLevels(String(a[0]), String(a[1]), a[2] as { subject: string; value: number; detail?: string }[]);
        return;
    }
  }

  /** Rules, channels and silences as the database has them (changed through another hub). */
  private async reload(): Promise<void> {
    const rules = await this.store.rules();
    if (this.evaluating) {
      // The evaluator ends the alerts of rules removed or changed elsewhere, as if changed here.
      const next = new Map(rules.map((r) => [r.id, r]));
      for (const old of this.listRules()) {
        const now = next.get(old.id);
        if (!now || now.updatedAt !== old.updatedAt) this.replaceRule(old, now, false);
      }
    }
    this.index(rules);
    this.channelList = await this.store.channels();
    this.silenceList = await this.store.silences();
  }

  /** Tells every hub that rules, channels or silences changed. */
  private changedConfig(): void {
    this.cluster?.bus.publish(this.cluster.bus.subject('alerts', 'config'), {});
  }

  /** The pending and firing alerts wherever the evaluator runs. */
  async activeNow(): Promise<AlertView[]> {
    if (this.evaluating || !this.cluster) return this.active();
    try {
      return (await this.cluster.bus.request(this.cluster.bus.subject('alerts', 'active'), {}, 3000)) as AlertView[];
    } catch {
      // No evaluator right now (hand-over, or the bus is down): what the database says is firing.
      return (await this.store.history({ state: 'firing', limit: 10_000 })).map((a): AlertView => ({ ...a, hostname: this.hostname(a.hostId), value: Number.isFinite(a.value) ? a.value : null, peak: Number.isFinite(a.peak) ? a.peak : null }));
    }
  }

  /** Sends what is waiting and writes what is pending (call after the scheduler has stopped). */
  async stop(): Promise<void> {
    this.metrics.off('sample', this.onSample);
    for (const s of this.sources) s.stop();
    await this.notifier.close();
    await this.writes;
  }

  /** Registers a source of anomaly signals (modules/workloads does, for containers and units). */
  addSource(src: AnomalySource): void {
    this.sources.push(src);
    src.start(this.sink);
  }

  /** The anomaly types and whether something feeds them in this hub. */
  anomalyCatalog(): { type: string; help: string; op: string; threshold: number; thresholdEditable: boolean; unit: string; fedBy: string[] }[] {
    return ANOMALY_TYPES.map((t) => {
      const d = ANOMALIES[t];
      const input = 'level' in d.input ? d.input.level : d.input.event;
      const fedBy = this.sources.filter((s) => s.feeds.includes(input)).map((s) => s.name);
      if (t === 'cert_expiry') fedBy.push('hub TLS probe');
      return { type: t, help: d.help, op: d.op, threshold: d.threshold, thresholdEditable: d.thresholdEditable, unit: d.unit, fedBy };
    });
  }

  private async restore(): Promise<void> {
    const now = this.now();
    for (const a of await this.store.history({ state: 'firing', limit: 100_000 })) {
      const ix = this.rules.get(a.ruleId);
      if (!ix || !ix.rule.enabled) {
        await this.store.putAlert({ ...a, state: 'resolved', endedAt: now, endReason: 'rule_changed' });
        continue;
      }
      const inst = new Instance(this.key(a.ruleId, a.hostId, a.subject), a.ruleId, a.hostId, a.subject);
      Object.assign(inst, { state: 'firing', since: a.startedAt, firedAt: a.firedAt, value: a.value, peak: a.peak, lastObs: now, lastCond: true, alertId: a.id, notified: !a.silenced, silenced: a.silenced, flapping: a.flapping, detail: a.detail ?? undefined, fireTimes: [a.firedAt] });
      this.instances.set(inst.key, inst);
    }
  }

  // ---- hosts ----------------------------------------------------------------------------------

  /**
   * Reloads names, labels and revocations of every host (labels change through the API, or through
   * another hub). Only ids, names and labels are read, and labels are parsed again only when their
   * text changed: with 10,000 hosts this runs every 15 s beside the ingest.
   */
  private async refreshHosts(): Promise<void> {
    const list = await this.hosts.listBrief();
    const seen = new Set<string>();
    for (const h of list) {
      seen.add(h.id);
      const prev = this.hostInfo.get(h.id);
      const labels = prev && prev.labelsJson === h.labelsJson ? prev.labels : (JSON.parse(h.labelsJson) as Labels);
      this.hostInfo.set(h.id, { hostname: h.hostname, labels, labelsJson: h.labelsJson, revoked: h.revokedAt !== null });
    }
    for (const id of this.hostInfo.keys()) if (!seen.has(id)) this.hostInfo.delete(id);
  }

  private async refreshHost(id: string): Promise<void> {
    const h = await this.hosts.get(id).catch(() => undefined);
    if (h) this.hostInfo.set(id, { hostname: h.hostname, labels: h.labels, labelsJson: JSON.stringify(h.labels), revoked: h.revokedAt !== null });
  }

  hostLabels(id: string): Labels | undefined {
    return this.hostInfo.get(id)?.labels;
  }

  /** A host was deleted: its alerts end. */
  forgetHost(id: string): void {
    const now = this.now();
    for (const inst of [...this.instances.values()]) {
      if (inst.hostId !== id) continue;
      const ix = this.rules.get(inst.ruleId);
      if (ix) this.apply(ix.rule, inst, end(inst, 'host_removed', now));
      this.instances.delete(inst.key);
    }
    for (const [k, e] of this.events) if (e.hostId === id) this.events.delete(k);
    this.hostInfo.delete(id);
  }

  private inScope(ix: Indexed, hostId: string): boolean {
    if (hostId === '') return true;
    const info = this.hostInfo.get(hostId);
    if (info?.revoked) return false;
    const s = ix.rule.scope;
    if (s.exclude?.includes(hostId)) return false;
    const byId = Boolean(s.hosts?.length);
    if (!byId && !ix.selector) return true;
    if (byId && s.hosts!.includes(hostId)) return true;
    if (ix.selector) {
      if (!info) {
        void this.refreshHost(hostId);
        return false;
      }
      return matchesSelector(info.labels, ix.selector);
    }
    return false;
  }

  // ---- intake ---------------------------------------------------------------------------------

  private key(ruleId: string, hostId: string, subject: string): string {
    return `${ruleId}\u0000${hostId}\u0000${subject}`;
  }

  private sample(hostId: string, kind: string, ts: number, series: Record<string, number>, keys: readonly string[], values: Float64Array): void {
    if (!this.byFamily.size) return;
    const now = this.now();
    if (ts < now - MAX_SAMPLE_AGE_MS) return;
    // Runs for every report of every host: no copies, and derived series only when a rule reads one.
    const plan = this.planOf(keys);
    for (let j = 0; j < plan.at.length; j++) {
      const i = plan.at[j]!;
      for (const ix of plan.rules[j]!) this.feed(ix, hostId, keys[i]!, values[i]!, now);
    }
    if (kind === 'usage' && this.derivedWatched) {
      // derived series are a new object per report (no shared key list to plan for), and few
      const d = derive(series);
      for (const k in d) for (const ix of this.rulesReading(k) ?? []) this.feed(ix, hostId, k, d[k]!, now);
    }
  }

  private planOf(keys: readonly string[]): { version: number; at: Int32Array; rules: Indexed[][] } {
    let plan = this.plans.get(keys);
    if (!plan || plan.version !== this.rulesVersion) {
      const at: number[] = [];
      const rules: Indexed[][] = [];
      for (let i = 0; i < keys.length; i++) {
        const reading = this.rulesReading(keys[i]!);
        if (!reading) continue;
        at.push(i);
        rules.push(reading);
      }
      plan = { version: this.rulesVersion, at: Int32Array.from(at), rules };
      this.plans.set(keys, plan);
    }
    return plan;
  }

  /** The enabled rules that read series `k` (`family|dim`): its family's, for every or this dimension. */
  private rulesReading(k: string): Indexed[] | undefined {
    const bar = k.indexOf('|');
    const list = this.byFamily.get(bar < 0 ? k : k.slice(0, bar));
    if (!list) return undefined;
    const dim = bar < 0 ? undefined : k.slice(bar + 1);
    const reading = list.filter((ix) => ix.dim === undefined || ix.dim === dim);
    return reading.length ? reading : undefined;
  }

  private onLevel(hostId: string, signal: string, subject: string, value: number, detail?: string): void {
    const list = this.byLevel.get(signal);
    if (!list) return;
    const now = this.now();
    for (const ix of list) {
      if (ix.rule.anomaly === 'cert_expiry' && ix.rule.params.endpoint !== subject) continue;
      this.feed(ix, hostId, subject, value, now, detail);
    }
  }

  private onLevels(hostId: string, signal: string, current: readonly { subject: string; value: number; detail?: string }[]): void {
    for (const c of current) this.onLevel(hostId, signal, c.subject, c.value, c.detail);
    const list = this.byLevel.get(signal);
    if (!list) return;
    const listed = new Set(current.map((c) => c.subject));
    const now = this.now();
    for (const ix of list) {
      for (const inst of [...this.instances.values()]) {
        if (inst.ruleId !== ix.rule.id || inst.hostId !== hostId || inst.state === 'inactive' || listed.has(inst.subject)) continue;
        this.feed(ix, hostId, inst.subject, 0, now);
      }
    }
  }

  private onEvent(hostId: string, event: string, subject: string, at: number, detail?: string): void {
    const k = `${event}\u0000${hostId}\u0000${subject}`;
    let e = this.events.get(k);
    if (!e) this.events.set(k, (e = { hostId, event, subject, times: [] }));
    e.times.push(at);
    if (e.times.length > 10_000) e.times.splice(0, e.times.length - 10_000);
    if (detail) e.detail = detail;
    this.feedEvent(e, this.now());
  }

  private feedEvent(e: { hostId: string; event: string; subject: string; times: number[]; detail?: string }, now: number): void {
    let longest = 0;
    for (const ix of this.byEvent.get(e.event) ?? []) {
      const win = Number(ix.rule.params.windowSec ?? 600) * 1000;
      longest = Math.max(longest, win);
      this.feed(ix, e.hostId, e.subject, e.times.filter((t) => t > now - win).length, now, e.detail);
    }
    const keep = now - (longest || 3600_000);
    while (e.times.length && e.times[0]! <= keep) e.times.shift();
  }

  private feed(ix: Indexed, hostId: string, subject: string, value: number, now: number, detail?: string): void {
    if (!this.inScope(ix, hostId)) return;
    const key = this.key(ix.rule.id, hostId, subject);
    let inst = this.instances.get(key);
    if (!inst) {
      // Most series are fine most of the time: an instance exists only once something breaches.
      if (ix.rule.aggregate === 'all' && !compare(ix.eval.op, value, ix.eval.threshold)) return;
      inst = new Instance(key, ix.rule.id, hostId, subject);
      this.instances.set(key, inst);
    }
    const tr = observe(inst, ix.eval, value, now);
    if (detail && inst.state !== 'inactive') inst.detail = detail;
    if (inst.state === 'firing' && !tr.length) this.dirtyPeaks.add(inst);
    this.apply(ix.rule, inst, tr);
  }

  // ---- transitions ----------------------------------------------------------------------------

  private viewOf(inst: Instance, rule: Pick<Rule, 'name' | 'severity' | 'op' | 'threshold'>): AlertView {
    const state = inst.state === 'inactive' ? (inst.alertId && inst.endReason ? 'resolved' : 'inactive') : inst.state;
    const fin = (v: number) => (Number.isFinite(v) ? v : null);
    return {
      id: inst.alertId ?? 'p_' + createHash('sha256').update(inst.key).digest('hex').slice(0, 20),
      ruleId: inst.ruleId,
      ruleName: rule.name,
      severity: rule.severity,
      hostId: inst.hostId,
      hostname: this.hostInfo.get(inst.hostId)?.hostname ?? '',
      subject: inst.subject,
      state,
      value: fin(inst.value),
      peak: fin(inst.peak),
      threshold: rule.threshold,
      op: rule.op,
      startedAt: inst.since,
      firedAt: inst.alertId ? inst.firedAt : null,
      endedAt: state === 'resolved' ? inst.endedAt : null,
      endReason: state === 'resolved' ? (inst.endReason ?? null) : null,
      silenced: inst.silenced,
      flapping: inst.flapping,
      detail: inst.detail ?? null,
    };
  }

  private rowOf(v: AlertView): AlertRow {
    return { id: v.id, ruleId: v.ruleId, ruleName: v.ruleName, severity: v.severity, hostId: v.hostId, subject: v.subject, state: v.state === 'resolved' ? 'resolved' : 'firing', value: v.value ?? NaN, peak: v.peak ?? NaN, threshold: v.threshold, op: v.op, startedAt: v.startedAt, firedAt: v.firedAt ?? v.startedAt, endedAt: v.endedAt, endReason: v.endReason, silenced: v.silenced, flapping: v.flapping, detail: v.detail };
  }

  private persist(v: AlertView): void {
    const row = this.rowOf(v);
    // Writes are chained: a resolution never lands before its firing.
    this.writes = this.writes.then(() => this.store.putAlert(row)).catch((err: Error) => this.log.error({ err: err.message, alertId: row.id }, 'alert history write failed'));
  }

  private apply(rule: Rule, inst: Instance, tr: TransitionType[]): void {
    for (const t of tr) {
      if (t === 'firing') inst.alertId = newId('al');
      const v = this.viewOf(inst, rule);
      switch (t) {
        case 'pending':
        case 'cleared':
          this.emit('change', v);
          break;
        case 'firing':
          this.persist(v);
          this.emit('change', v);
          this.log.info({ alertId: v.id, ruleId: rule.id, hostId: v.hostId, subject: v.subject, value: v.value }, 'alert firing');
          if (!inst.flapping) this.queue(rule, inst, v, 'firing');
          break;
        case 'resolved':
          this.persist(v);
          this.emit('change', v);
          this.log.info({ alertId: v.id, ruleId: rule.id, hostId: v.hostId, reason: v.endReason }, 'alert resolved');
          if (!inst.flapping && inst.notified) this.queue(rule, inst, v, 'resolved');
          this.dirtyPeaks.delete(inst);
          break;
        case 'flapping':
          this.log.warn({ ruleId: rule.id, hostId: inst.hostId, subject: inst.subject }, 'alert flapping: notifications held back until it is steady');
          break;
        case 'steady':
          if (inst.alertId) this.persist(v);
          this.emit('change', v);
          // Receivers learn the state the flapping settled in, if it differs from what they last heard.
          if (inst.state === 'firing' && !inst.notified) this.queue(rule, inst, v, 'firing');
          else if (inst.state === 'inactive' && inst.notified) this.queue(rule, inst, v, 'resolved');
          break;
      }
    }
  }

  private queue(rule: Rule, inst: Instance, v: AlertView, kind: 'firing' | 'resolved'): void {
    const alertId = v.id;
    this.notifier.enqueue(rule, v, kind, () => {
      if (kind === 'resolved') {
        if (!inst.notified) return false;
        inst.notified = false;
        return true;
      }
      // A firing notice whose episode already ended unnoticed, or that a silence covers, is not sent.
      if (inst.alertId !== alertId) return false;
      const s = this.silencedBy(rule.id, inst.hostId, this.now());
      if (s) {
        inst.silenced = true;
        v.silenced = true;
        this.persist(this.viewOf(inst, rule));
        this.emit('change', this.viewOf(inst, rule));
        return false;
      }
      inst.notified = true;
      return true;
    });
  }

  silencedBy(ruleId: string, hostId: string, now: number): Silence | undefined {
    const labels = this.hostInfo.get(hostId)?.labels ?? {};
    return this.silenceList.find((s) => {
      if (s.startsAt > now || s.endsAt <= now) return false;
      if (s.ruleId && s.ruleId !== ruleId) return false;
      if (s.hostId && s.hostId !== hostId) return false;
      if (s.selector) {
        try {
          if (!hostId || !matchesSelector(labels, parseSelector(s.selector))) return false;
        } catch {
          return false;
        }
      }
      return true;
    });
  }

  // ---- the tick -------------------------------------------------------------------------------

  private tickAll(): void {
    const now = this.now();
    try {
      for (const e of [...this.events.values()]) {
        this.feedEvent(e, now);
        if (!e.times.length) this.events.delete(`${e.event}\u0000${e.hostId}\u0000${e.subject}`);
      }
      for (const inst of [...this.instances.values()]) {
        const ix = this.rules.get(inst.ruleId);
        if (!ix) {
          this.instances.delete(inst.key);
          continue;
        }
        this.apply(ix.rule, inst, tick(inst, ix.eval, now));
        // An instance is forgotten once nothing about it matters any more (kept while its flap history counts).
        const recentFire = inst.fireTimes.some((t) => now - t < ix.eval.flapWindowSec * 1000);
        if (inst.state === 'inactive' && !inst.flapping && !recentFire && (ix.rule.aggregate === 'all' || now - inst.lastObs > 600_000)) this.instances.delete(inst.key);
      }
      if (now - this.lastPeakWrite > 10_000 && this.dirtyPeaks.size) {
        this.lastPeakWrite = now;
        for (const inst of this.dirtyPeaks) {
          const ix = this.rules.get(inst.ruleId);
          if (ix && inst.state === 'firing') this.persist(this.viewOf(inst, ix.rule));
        }
        this.dirtyPeaks.clear();
      }
      this.probeCerts(now);
      if (now - this.lastPrune > 3600_000) {
        this.lastPrune = now;
        const before = now - this.o.historyRetentionMs;
        this.writes = this.writes.then(() => Promise.all([this.store.pruneHistory(before), this.store.pruneSilences(before)])).catch((err: Error) => this.log.error({ err: err.message }, 'alert history prune failed'));
        this.silenceList = this.silenceList.filter((s) => s.endsAt >= before);
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'alert tick failed');
    }
  }

  private probeCerts(now: number): void {
    for (const ix of this.byLevel.get('cert_days_left') ?? []) {
      const endpoint = String(ix.rule.params.endpoint);
      if (endpoint === HUB_ENDPOINT) {
        this.hubCertificate(now);
        continue;
      }
      const serverName = ix.rule.params.serverName !== undefined ? String(ix.rule.params.serverName) : undefined;
      const k = `${endpoint}\u0000${serverName ?? ''}`;
      if ((this.certDue.get(k) ?? 0) > now) continue;
      this.certDue.set(k, now + this.o.certCheckIntervalMs);
      probeCertificate(endpoint, serverName, this.o.sendTimeoutMs, () => this.now()).then(
        (r) => this.onLevel('', 'cert_days_left', endpoint, Number(r.daysLeft.toFixed(2)), `certificate ${r.subject ? `CN=${r.subject} ` : ''}valid until ${r.validTo}`),
        (err: Error) => this.log.warn({ endpoint, err: err.message }, 'certificate probe failed'),
      );
    }
  }

  /** The hub's own certificate, read from what it serves (no probe): nothing on a plain HTTP hub. */
  private hubCertificate(now: number): void {
    if (!this.o.hubCertificate || (this.certDue.get(HUB_ENDPOINT) ?? 0) > now) return;
    this.certDue.set(HUB_ENDPOINT, now + this.o.certCheckIntervalMs);
    try {
      const c = new X509Certificate(this.o.hubCertificate);
      const validTo = Date.parse(c.validTo);
      const cn = /(?:^|\n)CN=([^\n]*)/.exec(c.subject)?.[1];
      this.onLevel('', 'cert_days_left', HUB_ENDPOINT, Number(((validTo - now) / 86400_000).toFixed(2)), `the hub's certificate ${cn ? `CN=${cn} ` : ''}valid until ${new Date(validTo).toISOString()}`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "the hub's certificate could not be read");
    }
  }

  // ---- rules ----------------------------------------------------------------------------------

  private evalOf(r: Rule): EvalRule {
    const staleSec = r.kind === 'metric' ? Math.max(120, 3 * r.forSec) : Infinity;
    return { op: r.op, threshold: r.threshold, forSec: r.forSec, resolveForSec: r.resolveForSec, aggregate: r.aggregate, flapCount: this.o.flapCount, flapWindowSec: this.o.flapWindowSec, staleSec };
  }

  private index(list: Rule[]): void {
    this.rules.clear();
    this.byFamily.clear();
    this.rulesVersion++; // every key list's plan is made again on its next report
    this.byLevel.clear();
    this.byEvent.clear();
    const add = (m: Map<string, Indexed[]>, k: string, ix: Indexed) => (m.get(k) ?? m.set(k, []).get(k)!).push(ix);
    this.derivedWatched = false;
    for (const rule of list) {
      let selector: Selector | null = null;
      try {
        selector = rule.scope.selector ? parseSelector(rule.scope.selector) : null;
      } catch {
        /* validated on write */
      }
      const ix: Indexed = { rule, eval: this.evalOf(rule), selector };
      this.rules.set(rule.id, ix);
      if (!rule.enabled) continue;
      if (rule.kind === 'metric' && rule.metric) {
        const p = parseMetric(rule.metric);
        if ('error' in p) continue;
        ix.family = p.family;
        if (p.dim !== undefined) ix.dim = p.dim;
        add(this.byFamily, p.family, ix);
        if (p.family in DERIVED) this.derivedWatched = true;
      } else if (rule.anomaly) {
        const input = ANOMALIES[rule.anomaly].input;
        if ('level' in input) add(this.byLevel, input.level, ix);
        else add(this.byEvent, input.event, ix);
      }
    }
  }

  listRules(): Rule[] {
    return [...this.rules.values()].map((x) => x.rule);
  }
  getRule(id: string): Rule | undefined {
    return this.rules.get(id)?.rule;
  }

  /** Checks and completes a rule; throws AlertError(400) with every problem at once. */
  normalizeRule(input: Partial<RuleInput>, base?: Rule): RuleInput {
    const errs: string[] = [];
    const r = { ...(base ?? {}), ...input } as Partial<RuleInput>;
    if (!r.name || r.name.length > 200) errs.push('name is required (at most 200 characters)');
    const kind = r.kind ?? (r.anomaly ? 'anomaly' : 'metric');
    let op = r.op;
    let threshold = r.threshold;
    if (kind === 'metric') {
      if (!r.metric) errs.push('metric is required for a metric rule, e.g. cpu_percent|busy or fs_used_percent');
      else {
        const p = parseMetric(r.metric);
        if ('error' in p) errs.push(p.error);
      }
      if (!op || !OPS.includes(op)) errs.push(`op must be one of ${OPS.join(' ')}`);
      if (typeof threshold !== 'number' || !Number.isFinite(threshold)) errs.push('threshold must be a number');
    } else {
      const def = r.anomaly ? ANOMALIES[r.anomaly] : undefined;
      if (!def) errs.push(`anomaly must be one of ${ANOMALY_TYPES.join(', ')}`);
      else {
        op = def.op;
        if (threshold === undefined || !def.thresholdEditable) threshold = def.threshold;
        if (r.anomaly === 'cert_expiry' && r.params?.endpoint !== HUB_ENDPOINT && !/^[A-Za-z0-9.\-:[\]]+:\d{1,5}$/.test(String(r.params?.endpoint ?? ''))) errs.push(`params.endpoint must be host:port of the TLS endpoint to check, or "${HUB_ENDPOINT}" for the hub's own certificate`);
        if ('event' in def.input && r.params?.windowSec !== undefined && !(Number(r.params.windowSec) >= 1 && Number(r.params.windowSec) <= 7 * 86400)) errs.push('params.windowSec must be 1 s to 7 days');
      }
    }
    const scope = r.scope ?? {};
    if (scope.selector) {
      try {
        parseSelector(scope.selector);
      } catch (err) {
        if (err instanceof SelectorError) errs.push(`scope.selector: ${err.message}`);
        else throw err;
      }
    }
    if (r.severity !== undefined && !SEVERITIES.includes(r.severity)) errs.push('severity must be info, warning or critical');
    for (const c of r.channels ?? []) if (!this.channelList.some((x) => x.id === c)) errs.push(`no channel ${c}`);
    if (errs.length) throw new AlertError(400, 'bad_rule', errs.join('; '));
    const forSec = r.forSec ?? 300;
    return {
      name: r.name!,
      kind,
      metric: kind === 'metric' ? r.metric! : null,
      anomaly: kind === 'anomaly' ? r.anomaly! : null,
      op: op!,
      threshold: threshold!,
      forSec,
      resolveForSec: r.resolveForSec ?? Math.min(forSec, 300),
      aggregate: r.aggregate ?? 'all',
      params: r.params ?? {},
      scope: { ...(scope.hosts?.length ? { hosts: scope.hosts } : {}), ...(scope.selector ? { selector: scope.selector } : {}), ...(scope.exclude?.length ? { exclude: scope.exclude } : {}) },
      severity: r.severity ?? 'warning',
      enabled: r.enabled ?? true,
      channels: r.channels ?? [],
      groupWindowSec: r.groupWindowSec ?? 60,
    };
  }

  async createRule(input: Partial<RuleInput>): Promise<Rule> {
    const spec = this.normalizeRule(input);
    const now = this.now();
    const rule: Rule = { ...spec, id: newId('rule'), preset: null, createdAt: now, updatedAt: now };
    await this.store.putRule(rule);
    this.index([...this.listRules(), rule]);
    this.changedConfig();
    return rule;
  }

  async updateRule(id: string, patch: Partial<RuleInput>): Promise<Rule> {
    const old = this.getRule(id);
    if (!old) throw new AlertError(404, 'not_found', 'no such rule');
    const { id: _i, preset: _p, createdAt: _c, updatedAt: _u, ...base } = old;
    // Switching kinds starts from a clean slate for the other kind's fields.
    const spec = this.normalizeRule(patch, base as Rule);
    const rule: Rule = { ...spec, id, preset: old.preset, createdAt: old.createdAt, updatedAt: this.now() };
    await this.store.putRule(rule);
    this.replaceRule(old, rule);
    return rule;
  }

  private replaceRule(old: Rule | undefined, rule: Rule | undefined, publish = true): void {
    const id = (old ?? rule)!.id;
    const what = (old?.metric ?? '') + (old?.anomaly ?? '') + JSON.stringify(old?.params ?? {});
    const same = old && rule && what === (rule.metric ?? '') + (rule.anomaly ?? '') + JSON.stringify(rule.params);
    // Instances survive a threshold or duration change (the next observation judges them anew);
    // they end when the rule is deleted, disabled, or made to watch something else.
    if (!rule || !rule.enabled || !same) {
      const now = this.now();
      for (const inst of [...this.instances.values()]) {
        if (inst.ruleId !== id) continue;
        this.apply(old!, inst, end(inst, 'rule_changed', now));
        this.instances.delete(inst.key);
      }
    }
    this.index([...this.listRules().filter((r) => r.id !== id), ...(rule ? [rule] : [])].sort((a, b) => a.createdAt - b.createdAt));
    if (publish) this.changedConfig();
  }

  async deleteRule(id: string): Promise<void> {
    const old = this.getRule(id);
    if (!old) throw new AlertError(404, 'not_found', 'no such rule');
    await this.store.deleteRule(id);
    this.replaceRule(old, undefined);
  }

  /** Puts every preset back as shipped (deleted ones come back; edits are undone). Other rules are untouched. */
  async resetPresets(): Promise<Rule[]> {
    const now = this.now();
    const out: Rule[] = [];
    for (const [key, p] of Object.entries(PRESETS)) {
      const id = presetId(key);
      const old = this.getRule(id);
      const rule: Rule = { ...p, channels: [], id, preset: key, createdAt: old?.createdAt ?? now, updatedAt: now };
      await this.store.putRule(rule);
      this.replaceRule(old, rule);
      out.push(rule);
    }
    return out;
  }

  // ---- channels -------------------------------------------------------------------------------

  listChannels(): Channel[] {
    return this.channelList;
  }
  getChannel(id: string): Channel | undefined {
    return this.channelList.find((c) => c.id === id);
  }

  async putChannel(input: { name?: string; type?: ChannelType; enabled?: boolean; config?: Record<string, unknown>; secret?: Record<string, unknown> }, id?: string): Promise<Channel> {
    const old = id ? this.getChannel(id) : undefined;
    if (id && !old) throw new AlertError(404, 'not_found', 'no such channel');
    const type = input.type ?? old?.type;
    if (!type || !CHANNEL_TYPES.includes(type)) throw new AlertError(400, 'bad_channel', `type must be one of ${CHANNEL_TYPES.join(', ')}`);
    if (old && type !== old.type) throw new AlertError(400, 'bad_channel', 'a channel’s type cannot change: create a new channel');
    const name = input.name ?? old?.name;
    if (!name || name.length > 200) throw new AlertError(400, 'bad_channel', 'name is required (at most 200 characters)');
    const config = input.config ?? old?.config ?? {};
    // Secrets are replaced field by field: an edit that leaves one out keeps it; null removes it.
    const secret: Record<string, unknown> = { ...(old?.secret ?? {}) };
    for (const [k, v] of Object.entries(input.secret ?? {})) {
      if (v === null) delete secret[k];
      else secret[k] = v;
    }
    const errs = validateChannel(type, config, secret);
    if (errs.length) throw new AlertError(400, 'bad_channel', errs.join('; '));
    const now = this.now();
    const c: Channel = { id: old?.id ?? newId('ch'), name, type, enabled: input.enabled ?? old?.enabled ?? true, config, secret, createdAt: old?.createdAt ?? now, updatedAt: now };
    await this.store.putChannel(c);
    this.channelList = [...this.channelList.filter((x) => x.id !== c.id), c].sort((a, b) => a.createdAt - b.createdAt);
    this.changedConfig();
    return c;
  }

  async deleteChannel(id: string): Promise<void> {
    if (!this.getChannel(id)) throw new AlertError(404, 'not_found', 'no such channel');
    const users = this.listRules().filter((r) => r.channels.includes(id));
    if (users.length) throw new AlertError(409, 'in_use', `rules send to this channel: ${users.map((r) => r.name).join(', ')}; remove it from them first`);
    await this.store.deleteChannel(id);
    this.channelList = this.channelList.filter((c) => c.id !== id);
    this.changedConfig();
  }

  async testChannel(id: string): Promise<Delivery> {
    const c = this.getChannel(id);
    if (!c) throw new AlertError(404, 'not_found', 'no such channel');
    return this.notifier.test(c);
  }

  // ---- silences -------------------------------------------------------------------------------

  listSilences(): Silence[] {
    return this.silenceList;
  }

  async addSilence(input: { ruleId?: string; hostId?: string; selector?: string; startsAt?: number; endsAt: number; reason: string }, by: string): Promise<Silence> {
    const now = this.now();
    const errs: string[] = [];
    if (!input.ruleId && !input.hostId && !input.selector) errs.push('a silence names a rule, a host or a label selector (or several)');
    if (input.ruleId && !this.getRule(input.ruleId)) errs.push(`no rule ${input.ruleId}`);
    if (input.selector) {
      try {
        parseSelector(input.selector);
      } catch (err) {
        errs.push(`selector: ${(err as Error).message}`);
      }
    }
    if (!(input.endsAt > now)) errs.push('endsAt must be in the future');
    if (!input.reason?.trim()) errs.push('reason is required');
    if (errs.length) throw new AlertError(400, 'bad_silence', errs.join('; '));
    const s: Silence = { id: newId('sil'), ruleId: input.ruleId ?? null, hostId: input.hostId ?? null, selector: input.selector ?? null, startsAt: input.startsAt ?? now, endsAt: input.endsAt, reason: input.reason.trim(), createdBy: by, createdAt: now };
    await this.store.addSilence(s);
    this.silenceList = [s, ...this.silenceList];
    this.changedConfig();
    return s;
  }

  async deleteSilence(id: string): Promise<void> {
    if (!(await this.store.deleteSilence(id))) throw new AlertError(404, 'not_found', 'no such silence');
    this.silenceList = this.silenceList.filter((s) => s.id !== id);
    this.changedConfig();
  }

  // ---- alerts ---------------------------------------------------------------------------------

  /** Pending and firing alerts, newest first. */
  active(): AlertView[] {
    const out: AlertView[] = [];
    for (const inst of this.instances.values()) {
      if (inst.state === 'inactive') continue;
      const ix = this.rules.get(inst.ruleId);
      if (ix) out.push(this.viewOf(inst, ix.rule));
    }
    return out.sort((a, b) => b.startedAt - a.startedAt);
  }

  /** Writes queued so far are in the database (tests, shutdown). */
  async settled(): Promise<void> {
    await this.writes;
  }

  hostname(id: string): string {
    return this.hostInfo.get(id)?.hostname ?? '';
  }
}

export { FAMILIES, DERIVED };
