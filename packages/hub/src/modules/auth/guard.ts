/**
 * Limits on guessing: failures per client address in a window (429), and per account name a
 * lockout after N failures in a row (423) that lasts a while or until an admin unlocks it.
 *
 * Names that are no account are counted and locked exactly like real ones (in memory), so the
 * answers never tell whether a user exists.
 */
import type { AuthStore, LoginRow } from './store.js';

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

export class LoginGuard {
  private readonly ip = new Map<string, { n: number; resetAt: number }>();
  private readonly ghosts = new Map<string, { n: number; lockedUntil: number | null }>();
  constructor(
    private readonly store: AuthStore,
    readonly opts: GuardOptions,
  ) {}

  /** Milliseconds until this address may try again, or 0. */
  ipRetryAfter(ip: string, now: number): number {
    const e = this.ip.get(ip);
    if (!e || e.resetAt <= now) return 0;
    return e.n >= this.opts.ipMaxFailures ? e.resetAt - now : 0;
  }

  /** When the account (or the name, if no account has it) is locked until, if it is. */
  lockedUntil(row: LoginRow | undefined, username: string, now: number): number | undefined {
    const until = row ? row.lockedUntil : (this.ghosts.get(username.toLowerCase())?.lockedUntil ?? null);
    return until !== null && until > now ? until : undefined;
  }

  async failure(row: LoginRow | undefined, username: string, ip: string, now: number): Promise<void> {
    const e = this.ip.get(ip);
    if (!e || e.resetAt <= now) bounded(this.ip, ip, { n: 1, resetAt: now + this.opts.windowMs });
    else e.n++;
    const lockUntil = this.opts.lockoutMs === 0 ? LOCKED_FOR_GOOD : now + this.opts.lockoutMs;
    if (row) {
      await this.store.recordFailure(row.id, this.opts.maxFailures, lockUntil);
      return;
    }
    const key = username.toLowerCase();
    const g = this.ghosts.get(key) ?? { n: 0, lockedUntil: null };
    if (g.lockedUntil !== null && g.lockedUntil <= now) {
      g.n = 0;
      g.lockedUntil = null;
    }
    g.n++;
    if (g.n >= this.opts.maxFailures) g.lockedUntil = lockUntil;
    bounded(this.ghosts, key, g);
  }

  async success(row: LoginRow): Promise<void> {
    if (row.failedLogins > 0 || row.lockedUntil !== null) await this.store.clearFailures(row.id);
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
