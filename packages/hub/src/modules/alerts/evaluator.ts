/**
 * The state machine of one alert instance (a rule × host × subject), kept free of I/O so that
 * durations, hysteresis and flapping can be tested with a fake clock. Times are the hub's clock
 * when an observation arrived, never the agent's (agents' clocks may be skewed).
 *
 *   inactive ─breach→ pending ─held for `forSec`→ firing ─clear for `resolveForSec`→ resolved
 *                        └─clear→ inactive (never fired: nothing is recorded)
 */

export type Op = '>' | '>=' | '<' | '<=' | '==' | '!=';
export const OPS: readonly Op[] = ['>', '>=', '<', '<=', '==', '!='];

export function compare(op: Op, v: number, t: number): boolean {
  switch (op) {
    case '>':
      return v > t;
    case '>=':
      return v >= t;
    case '<':
      return v < t;
    case '<=':
      return v <= t;
    case '==':
      return v === t;
    case '!=':
      return v !== t;
  }
}

export interface EvalRule {
  op: Op;
  threshold: number;
  /** how long the condition must hold before the alert fires (all: every observation; avg: the window's mean) */
  forSec: number;
  /** how long the condition must stay clear before a firing alert resolves (hysteresis) */
  resolveForSec: number;
  aggregate: 'all' | 'avg';
  /** this many firings within `flapWindowSec` mark the instance flapping: its notifications are held back */
  flapCount: number;
  flapWindowSec: number;
  /** a pending or firing instance that gets no observation for this long ends (host gone, series gone); Infinity for level signals */
  staleSec: number;
}

export type InstanceState = 'inactive' | 'pending' | 'firing';
export type TransitionType = 'pending' | 'firing' | 'resolved' | 'cleared' | 'flapping' | 'steady';

/**
 * The observations of an averaging rule over its window, in two typed rings. An instance exists per
 * host and series (10,000 hosts × a few interfaces), each holding minutes of samples: as arrays of
 * [ts, value] pairs they were most of the hub's live heap, which every full collection walks.
 */
export class ObsWindow {
  private ts = new Float64Array(8);
  private vs = new Float64Array(8);
  private head = 0;
  length = 0;

  push(ts: number, v: number): void {
    if (this.length === this.ts.length) this.grow();
    const i = (this.head + this.length) % this.ts.length;
    this.ts[i] = ts;
    this.vs[i] = v;
    this.length++;
  }

  /** Drops observations older than `from`, always keeping the newest. */
  dropBefore(from: number): void {
    while (this.length > 1 && this.ts[this.head]! < from) {
      this.head = (this.head + 1) % this.ts.length;
      this.length--;
    }
  }

  mean(): number {
    let sum = 0;
    for (let k = 0; k < this.length; k++) sum += this.vs[(this.head + k) % this.vs.length]!;
    return this.length ? sum / this.length : NaN;
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }

  private grow(): void {
    const n = this.ts.length;
    const ts = new Float64Array(n * 2);
    const vs = new Float64Array(n * 2);
    for (let k = 0; k < this.length; k++) {
      ts[k] = this.ts[(this.head + k) % n]!;
      vs[k] = this.vs[(this.head + k) % n]!;
    }
    this.ts = ts;
    this.vs = vs;
    this.head = 0;
  }
}

export class Instance {
  state: InstanceState = 'inactive';
  /** when the condition started to hold (pending since) */
  since = 0;
  firedAt = 0;
  endedAt = 0;
  /** while firing: when the condition stopped holding */
  clearSince: number | undefined;
  value = NaN;
  peak = NaN;
  lastObs = 0;
  lastCond = false;
  /** avg mode: observations in the window; firstObs: since when the window is covered */
  window = new ObsWindow();
  firstObs = 0;
  fireTimes: number[] = [];
  flapping = false;
  /** the id of the history row while firing */
  alertId: string | undefined;
  /** whether the last notification receivers got for this instance said firing (a resolved one follows only then) */
  notified = false;
  silenced = false;
  endReason: 'cleared' | 'stale' | 'rule_changed' | 'host_removed' | undefined;
  detail: string | undefined;

  constructor(
    readonly key: string,
    readonly ruleId: string,
    readonly hostId: string,
    readonly subject: string,
  ) {}
}

function lowerIsWorse(op: Op): boolean {
  return op === '<' || op === '<=';
}

function trackPeak(inst: Instance, rule: EvalRule, v: number): void {
  if (Number.isNaN(inst.peak)) inst.peak = v;
  else inst.peak = lowerIsWorse(rule.op) ? Math.min(inst.peak, v) : Math.max(inst.peak, v);
}

function fire(inst: Instance, rule: EvalRule, now: number, out: TransitionType[]): void {
  inst.state = 'firing';
  inst.firedAt = now;
  inst.clearSince = undefined;
  inst.silenced = false;
  inst.endReason = undefined;
  inst.fireTimes = inst.fireTimes.filter((t) => now - t < rule.flapWindowSec * 1000);
  inst.fireTimes.push(now);
  if (!inst.flapping && inst.fireTimes.length >= rule.flapCount) {
    inst.flapping = true;
    out.push('flapping');
  }
  out.push('firing');
}

function resolve(inst: Instance, reason: Instance['endReason'], now: number, out: TransitionType[]): void {
  inst.state = 'inactive';
  inst.endedAt = now;
  inst.endReason = reason;
  inst.clearSince = undefined;
  inst.window.clear();
  out.push('resolved');
}

/** Feeds one observation. Returns what changed, in order. */
export function observe(inst: Instance, rule: EvalRule, value: number, now: number): TransitionType[] {
  const out: TransitionType[] = [];
  inst.value = value;
  inst.lastObs = now;
  let cond: boolean;
  let covered = true;
  if (rule.aggregate === 'avg') {
    if (!inst.window.length) inst.firstObs = now;
    inst.window.push(now, value);
    inst.window.dropBefore(now - rule.forSec * 1000);
    const avg = inst.window.mean();
    cond = compare(rule.op, avg, rule.threshold);
    covered = now - inst.firstObs >= rule.forSec * 1000;
  } else cond = compare(rule.op, value, rule.threshold);
  inst.lastCond = cond;
  const holdMs = rule.aggregate === 'avg' ? 0 : rule.forSec * 1000;
  if (cond) {
    if (inst.state === 'inactive') {
      inst.state = 'pending';
      inst.endReason = undefined;
      inst.since = now;
      inst.peak = NaN;
      inst.detail = undefined;
      out.push('pending');
    }
    trackPeak(inst, rule, value);
    if (inst.state === 'pending' && covered && now - inst.since >= holdMs) fire(inst, rule, now, out);
    else if (inst.state === 'firing') inst.clearSince = undefined;
  } else if (inst.state === 'pending') {
    inst.state = 'inactive';
    out.push('cleared');
  } else if (inst.state === 'firing') {
    inst.clearSince ??= now;
    if (now - inst.clearSince >= rule.resolveForSec * 1000) resolve(inst, 'cleared', now, out);
  }
  return out;
}

/** Advances time without an observation: durations that elapsed, resolutions due, staleness, the end of flapping. */
export function tick(inst: Instance, rule: EvalRule, now: number): TransitionType[] {
  const out: TransitionType[] = [];
  if (inst.state !== 'inactive' && now - inst.lastObs > rule.staleSec * 1000) {
    if (inst.state === 'pending') {
      inst.state = 'inactive';
      out.push('cleared');
    } else resolve(inst, 'stale', now, out);
  } else if (inst.state === 'pending' && inst.lastCond && rule.aggregate === 'all' && now - inst.since >= rule.forSec * 1000) {
    fire(inst, rule, now, out);
  } else if (inst.state === 'firing' && inst.clearSince !== undefined && now - inst.clearSince >= rule.resolveForSec * 1000) {
    resolve(inst, 'cleared', now, out);
  }
  if (inst.flapping) {
    inst.fireTimes = inst.fireTimes.filter((t) => now - t < rule.flapWindowSec * 1000);
    if (!inst.fireTimes.length) {
      inst.flapping = false;
      out.push('steady');
    }
  }
  return out;
}

/** Ends an instance from outside (its rule was disabled or deleted, its host removed). */
export function end(inst: Instance, reason: 'rule_changed' | 'host_removed', now: number): TransitionType[] {
  const out: TransitionType[] = [];
  if (inst.state === 'firing') resolve(inst, reason, now, out);
  else if (inst.state === 'pending') {
    inst.state = 'inactive';
    out.push('cleared');
  }
  return out;
}
