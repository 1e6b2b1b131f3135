/**
 * The hub's one clock. Every scheduler, expiry and timeout in the hub takes its time from a `Clock`
 * passed in, never from `Date.now()` (Java's java.time.Clock, Go's injectable clocks): rollups,
 * compaction, retention, alert durations, task-lost timers, token and session expiry. Tests give
 * the hub a `TestClock` and move it across hour, day and retention boundaries, with the hub stopped
 * and started again in between, so that a hub that would die at the top of the hour dies in the
 * suite first.
 *
 * Timers set through a clock fire when the clock says their time has come: on the system clock that
 * is a plain Node timer; on a test clock that jumps forward, every timer whose time the jump passed
 * fires at once (an interval once, as a process would see after a suspend, then again a period
 * later). Clock timers are unref'd: they never keep a process alive on their own.
 *
 * Network liveness (heartbeats, handshake and request timeouts between the hub and a connected peer)
 * is deliberately not on this clock: it measures real elapsed time on the wire, and a wall-clock step
 * must not drop every agent.
 */

export interface ClockTimer {
  /** Stops the timer; calling it twice, or after a timeout fired, does nothing. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch, as the hub believes them. */
  now(): number;
  /** Calls `fn` once `ms` of this clock's time have passed. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  /** Calls `fn` every `ms` of this clock's time. */
  setInterval(fn: () => void, ms: number): ClockTimer;
}

/** Node's timers take at most 2^31 − 1 ms; a longer wait is cut into pieces. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real wall clock, with Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    let t: NodeJS.Timeout;
    const due = Date.now() + Math.max(0, ms);
    const arm = () => {
      const left = due - Date.now();
      t = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(Math.max(0, left), MAX_TIMER_MS));
      t.unref();
    };
    arm();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, Math.min(Math.max(1, ms), MAX_TIMER_MS));
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

interface TestTimer {
  due: number;
  period: number | undefined;
  fn: () => void;
  real: NodeJS.Timeout | undefined;
  live: boolean;
}

/**
 * A clock that runs with real time from a chosen start and that a test moves forward with
 * `advance` or `set`. Real time keeps passing (sockets, databases and agents work as usual); a jump
 * fires every timer it passes, in the order of their due times.
 */
export class TestClock implements Clock {
  private offset: number;
  private readonly timers = new Set<TestTimer>();

  constructor(start: number = Date.now()) {
    this.offset = start - Date.now();
  }

  now(): number {
    return Date.now() + this.offset;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.add(fn, Math.max(0, ms), undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    const period = Math.max(1, ms);
    return this.add(fn, period, period);
  }

  /** Moves the clock `ms` forward and fires the timers that became due. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`a test clock only moves forward (asked to move ${ms} ms)`);
    this.offset += ms;
    this.fireDue();
  }

  /** Moves the clock forward to `ts` (epoch ms). */
  set(ts: number): void {
    this.advance(ts - this.now());
  }

  private add(fn: () => void, delay: number, period: number | undefined): ClockTimer {
    const t: TestTimer = { due: this.now() + delay, period, fn, real: undefined, live: true };
    this.timers.add(t);
    this.arm(t);
    return {
      cancel: () => {
        t.live = false;
        clearTimeout(t.real);
        this.timers.delete(t);
      },
    };
  }

  private arm(t: TestTimer): void {
    clearTimeout(t.real);
    const left = Math.min(Math.max(0, t.due - this.now()), MAX_TIMER_MS);
    t.real = setTimeout(() => this.fire(t), left);
    t.real.unref();
  }

  private fire(t: TestTimer): void {
    if (!t.live) return;
    if (t.due > this.now()) return this.arm(t); // a real timer cut short by MAX_TIMER_MS
    if (t.period === undefined) {
      t.live = false;
      this.timers.delete(t);
    } else {
      t.due = this.now() + t.period;
      this.arm(t);
    }
    t.fn();
  }

  private fireDue(): void {
    const now = this.now();
    const due = [...this.timers].filter((t) => t.due <= now).sort((a, b) => a.due - b.due);
    for (const t of due) this.fire(t);
    for (const t of this.timers) if (t.live && t.due > now) this.arm(t);
  }
}
