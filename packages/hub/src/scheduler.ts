/**
 * The hub's periodic work, on the hub's clock: metric rollups, compaction and retention, alert
 * evaluation, task-lost sweeps, session and recording pruning. One place runs it all, so that
 *  - a run never overlaps the previous run of the same task (a compaction that takes longer than its
 *    period is not started twice),
 *  - every task's last run, duration and error are known (the health route reports them),
 *  - a test can move the clock across a boundary and wait until the work it caused is done,
 *  - shutdown stops every timer in one call and waits a bounded time for runs in flight.
 */
import type { Logger } from 'pino';
import type { Clock, ClockTimer } from './clock.js';

export interface ScheduledTaskStatus {
  name: string;
  everyMs: number;
  runs: number;
  failures: number;
  /** due while the previous run was still going, so not started */
  skipped: number;
  running: boolean;
  /** how long the current run has taken so far (real time) */
  runningForMs?: number;
  /** hub-clock times */
  lastStartAt?: number;
  lastOkAt?: number;
  lastDurationMs?: number;
  lastError?: string;
  /** a singleton's lease: in a cluster the task runs only on the hub that holds it */
  lease?: string;
  /** the lease is held by another hub, so this one does not run it */
  standby?: boolean;
}

interface Task {
  status: ScheduledTaskStatus;
  run: (now: number) => Promise<void> | void;
  timer: ClockTimer | undefined;
  current: Promise<void> | undefined;
  startedPerf: number;
}

export class Scheduler {
  private readonly tasks = new Map<string, Task>();
  private stopped = false;
  /** whether this hub holds a lease now (a hub alone holds them all; cluster/leases.ts) */
  gate: (lease: string) => boolean = () => true;

  constructor(
    readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Runs `run` every `everyMs` of the clock's time, never two runs of it at once; with `lease`, only
   * while this hub holds that lease (a singleton of the cluster).
   */
  every(name: string, everyMs: number, run: (now: number) => Promise<void> | void, opts: { lease?: string } = {}): void {
    if (this.tasks.has(name)) throw new Error(`scheduler: a task named ${name} exists`);
    const t: Task = { status: { name, everyMs, runs: 0, failures: 0, skipped: 0, running: false, ...(opts.lease ? { lease: opts.lease } : {}) }, run, timer: undefined, current: undefined, startedPerf: 0 };
    this.tasks.set(name, t);
    if (!this.stopped) t.timer = this.clock.setInterval(() => void this.start(t), everyMs);
  }

  /** Runs a task now (or waits for the run in flight) and resolves when it has ended. */
  async run(name: string): Promise<void> {
    const t = this.tasks.get(name);
    if (!t) throw new Error(`scheduler: no task named ${name}`);
    await (t.current ?? this.start(t));
  }

  private start(t: Task): Promise<void> {
    if (t.current) {
      t.status.skipped++;
      return t.current;
    }
    if (this.stopped) return Promise.resolve();
    const s = t.status;
    if (s.lease) {
      s.standby = !this.gate(s.lease);
      if (s.standby) return Promise.resolve();
    }
    s.running = true;
    s.lastStartAt = this.clock.now();
    t.startedPerf = performance.now();
    t.current = (async () => {
      try {
        await t.run(s.lastStartAt!);
        s.lastOkAt = this.clock.now();
        delete s.lastError;
      } catch (err) {
        s.failures++;
        s.lastError = (err as Error).message;
        this.log.error({ task: s.name, err: s.lastError }, 'scheduled task failed');
      } finally {
        s.runs++;
        s.running = false;
        s.lastDurationMs = Math.round(performance.now() - t.startedPerf);
        t.current = undefined;
      }
    })();
    return t.current;
  }

  status(): ScheduledTaskStatus[] {
    const now = performance.now();
    return [...this.tasks.values()].map((t) => ({ ...t.status, ...(t.current ? { runningForMs: Math.round(now - t.startedPerf) } : {}) }));
  }

  /** Resolves once no task is running (what a clock jump set off has ended). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.tasks.values()].map((t) => t.current).filter((p): p is Promise<void> => p !== undefined);
      if (!running.length) return;
      await Promise.all(running);
    }
  }

  /**
   * Stops every timer and waits at most `graceMs` for runs in flight. Returns the names of the
   * tasks still running when it gave up (their work is abandoned with the process).
   */
  async stop(graceMs: number): Promise<string[]> {
    this.stopped = true;
    for (const t of this.tasks.values()) t.timer?.cancel();
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), graceMs)));
    const r = await Promise.race([this.idle().then(() => 'idle' as const), gaveUp]);
    clearTimeout(timer);
    return r === 'idle' ? [] : [...this.tasks.values()].filter((t) => t.current).map((t) => t.status.name);
  }
}
