/**
 * Limits on guessing: failures per client address in a window (429), and per account name a
 * lockout after N failures in a row (423) that lasts a while or until an admin unlocks it.
 *
 * An attempt is counted before its password or code is checked (`begin`), and counts as a
 * failure unless it turns out right (`succeeded`) or was no guess (`notAGuess`). So guesses sent
 * in parallel are limited as strictly as guesses sent one by one: once the count reaches the
 * limit, no further guess is checked against the account's secret at all.
 *
 * Names that are no account are counted and locked exactly like real ones (in memory), so the
 * answers never tell whether a user exists; when a lock runs out, both start a fresh count.
 */
import type { AuthStore } from './store.js';

export interface GuardOptions {
  /** failures in a row that lock an account */
  maxFailures: number;
  /** how long a lock lasts; 0: until an admin unlocks it */
  lockoutMs: number;
  /** failures from one address per window before it is refused */
  ipMaxFailures: number;
  windowMs: number;
}

/** A lock with no end: only an admin unlock lifts it. */
export const LOCKED_FOR_GOOD = 8_000_000_000_000_000;
const MAX_TRACKED = 10_000;

/** An attempt that was counted: what `succeeded` or `notAGuess` need to settle it. */
export interface Attempt {
  readonly ip: string;
  /** the account's id; null: a name that is no account (counted in memory) */
  readonly userId: string | null;
  /** the lock this attempt set by reaching the limit, if it did */
  readonly lockSet: number | null;
}

export type Admission = { kind: 'counted'; attempt: Attempt } | { kind: 'locked'; until: number } | { kind: 'rate_limited'; retryAfterMs: number };

export class LoginGuard {
  private readonly ip = new Map<string, { n: number; resetAt: number }>();
  private readonly ghosts = new Map<string, { n: number; lockedUntil: number | null }>();
  constructor(
    private readonly store: AuthStore,
    readonly opts: GuardOptions,
  ) {}

  /**
   * Counts an attempt for `username` from `ip`, or says why it may not be made. Only a `counted`
   * attempt may check a secret; it is a failure until settled otherwise.
   */
  async begin(username: string, ip: string, now: number): Promise<Admission> {
    // The address count is taken synchronously, before anything awaits: parallel requests see each other.
    let e = this.ip.get(ip);
    if (!e || e.resetAt <= now) bounded(this.ip, ip, (e = { n: 0, resetAt: now + this.opts.windowMs }));
    if (e.n >= this.opts.ipMaxFailures) return { kind: 'rate_limited', retryAfterMs: e.resetAt - now };
    e.n++;
    const lockUntil = this.opts.lockoutMs === 0 ? LOCKED_FOR_GOOD : now + this.opts.lockoutMs;
    const claimed = await this.store.claimAttempt(username, this.opts.maxFailures, lockUntil, now);
    if (claimed && 'locked' in claimed) {
      this.refundIp(ip);
      return { kind: 'locked', until: claimed.locked };
    }
    if (claimed) return { kind: 'counted', attempt: { ip, userId: claimed.userId, lockSet: claimed.failures >= this.opts.maxFailures ? claimed.lockedUntil : null } };
    const key = username.toLowerCase();
    const g = this.ghosts.get(key) ?? { n: 0, lockedUntil: null };
    if (g.lockedUntil !== null && g.lockedUntil > now) {
      this.refundIp(ip);
      return { kind: 'locked', until: g.lockedUntil };
    }
    if (g.lockedUntil !== null) {
      g.n = 0;
      g.lockedUntil = null;
    }
    g.n++;
    if (g.n >= this.opts.maxFailures) g.lockedUntil = lockUntil;
    bounded(this.ghosts, key, g);
    return { kind: 'counted', attempt: { ip, userId: null, lockSet: g.lockedUntil } };
  }

  /** The secret was right: the account's failures (this attempt's included) are cleared, and the address's count gives this one back. */
  async succeeded(a: Attempt): Promise<void> {
    this.refundIp(a.ip);
    if (a.userId) await this.store.clearFailures(a.userId);
  }

  /** The attempt checked nothing that could be guessed (a right password still waiting for its one-time code): it is not counted. */
  async notAGuess(a: Attempt): Promise<void> {
    this.refundIp(a.ip);
    if (a.userId) await this.store.refundAttempt(a.userId, a.lockSet);
  }

  private refundIp(ip: string): void {
    const e = this.ip.get(ip);
    if (e && e.n > 0) e.n--;
  }

  lockMessage(until: number, now: number): string {
    const head = `account locked after ${this.opts.maxFailures} failed attempts`;
    if (until >= LOCKED_FOR_GOOD) return `${head}: an admin must unlock it (tether user unlock NAME)`;
    return `${head}: try again in ${Math.max(1, Math.ceil((until - now) / 60_000))} minute(s), or ask an admin to unlock it (tether user unlock NAME)`;
  }
}

function bounded<V>(m: Map<string, V>, k: string, v: V): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > MAX_TRACKED) m.delete(m.keys().next().value!);
}
