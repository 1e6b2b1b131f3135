/**
 * Accounts, sessions, API tokens, TOTP secrets, recovery codes and login history. Owns `users`,
 * `sessions`, `api_tokens`, `recovery_codes` and `login_history`.
 *
 * Secrets never rest in clear: passwords are argon2id hashes; session tokens, API tokens and
 * recovery codes are random with ≥ 192 bits (recovery codes 80) and stored as SHA-256, so the lookup
 * itself is the comparison and a database dump yields nothing usable. TOTP secrets must be readable
 * to check codes: they are sealed with the hub's key file (secret-box.ts), bound to their user.
 */
import { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import type { ModuleMigrations } from '../../db/migrate.js';
import { isPostgres } from '../../db/dialect.js';
import { SecretBox } from '../../secret-box.js';

interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  created_at: number;
  updated_at: number;
  disabled: number;
  host_selector: string | null;
  totp_secret: string | null;
  totp_pending: string | null;
  totp_last_step: number;
  failed_logins: number;
  locked_until: number | null;
  password_changed_at: number | null;
}
interface SessionsTable {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  last_used_at: number;
  ip: string;
  user_agent: string;
  sid: string;
  csrf: string;
  step_up_at: number | null;
}
interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  scope: string;
  host_selector: string | null;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  last_used_ip: string | null;
  revoked_at: number | null;
}
interface RecoveryCodesTable {
  user_id: string;
  code_hash: string;
  used_at: number | null;
}
interface LoginHistoryTable {
  id: string;
  ts: number;
  kind: string;
  username: string;
  user_id: string | null;
  ip: string;
  user_agent: string;
  outcome: string;
}
interface Tables {
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  recovery_codes: RecoveryCodesTable;
  login_history: LoginHistoryTable;
}

export const authMigrations: ModuleMigrations = {
  '0003_auth_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('username', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('password_hash', 'varchar(256)', (c) => c.notNull())
        .addColumn('role', 'varchar(16)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint', (c) => c.notNull())
        .addColumn('ip', 'varchar(64)', (c) => c.notNull())
        .addColumn('user_agent', 'varchar(256)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    },
  },
  '0100_accounts': {
    async up(db: Kysely<any>) {
      // SQLite adds one column per ALTER TABLE.
      const addUser = (name: string, type: 'varchar(1024)' | 'varchar(64)' | 'bigint' | 'integer', dflt?: number) =>
        db.schema.alterTable('users').addColumn(name, type, (c) => (dflt === undefined ? c : c.notNull().defaultTo(dflt))).execute();
      await addUser('host_selector', 'varchar(1024)');
      await addUser('totp_secret', 'varchar(64)');
      await addUser('totp_pending', 'varchar(64)');
      await addUser('totp_last_step', 'bigint', 0);
      await addUser('failed_logins', 'integer', 0);
      await addUser('locked_until', 'bigint');
      await addUser('password_changed_at', 'bigint');
      // Sessions from before CSRF tokens existed end: their holders log in again.
      await db.deleteFrom('sessions').execute();
      await db.schema.alterTable('sessions').addColumn('sid', 'varchar(32)', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('sessions').addColumn('csrf', 'varchar(64)', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('sessions').addColumn('step_up_at', 'bigint').execute();
      await db.schema.createIndex('sessions_sid').on('sessions').column('sid').execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('name', 'varchar(128)', (c) => c.notNull())
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('scope', 'varchar(16)', (c) => c.notNull())
        .addColumn('host_selector', 'varchar(1024)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('last_used_ip', 'varchar(64)')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();
      await db.schema
        .createTable('recovery_codes')
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'code_hash'])
        .execute();
      await db.schema
        .createTable('login_history')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('username', 'varchar(64)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(64)')
        .addColumn('ip', 'varchar(64)', (c) => c.notNull())
        .addColumn('user_agent', 'varchar(256)', (c) => c.notNull())
        .addColumn('outcome', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('login_history_ts').on('login_history').column('ts').execute();
      await db.schema.createIndex('login_history_user').on('login_history').columns(['user_id', 'ts']).execute();
    },
  },
  // Sealed TOTP secrets are longer than the plaintext (SQLite does not enforce varchar lengths);
  // the plaintext ones are sealed by AuthStore.sealStoredSecrets at start, which needs the key file.
  '0105_auth_sealed_totp': {
    async up(db: Kysely<any>) {
      if (!isPostgres(db)) return;
      await db.schema.alterTable('users').alterColumn('totp_secret', (c) => c.setDataType('varchar(256)')).execute();
      await db.schema.alterTable('users').alterColumn('totp_pending', (c) => c.setDataType('varchar(256)')).execute();
    },
  },
};

export type Role = 'admin' | 'operator' | 'viewer';
export type TokenScope = 'read' | 'write' | 'execute';
export interface User {
  id: string;
  username: string;
  role: Role;
  createdAt: number;
  /** label selector limiting the hosts this user sees and acts on; null: all hosts */
  hostSelector: string | null;
}
export interface UserDetail extends User {
  disabled: boolean;
  totpEnabled: boolean;
  lockedUntil: number | null;
  failedLogins: number;
  updatedAt: number;
  passwordChangedAt: number | null;
}
/** A user row as the login path needs it. */
export interface LoginRow extends UserDetail {
  passwordHash: string;
  totpSecret: string | null;
  totpLastStep: number;
}
export interface SessionInfo {
  id: string;
  userId: string;
  username: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number;
  ip: string;
  userAgent: string;
  stepUpAt: number | null;
}
export interface ApiTokenInfo {
  id: string;
  userId: string;
  username: string;
  name: string;
  scope: TokenScope;
  hostSelector: string | null;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
  lastUsedIp: string | null;
  revokedAt: number | null;
}
export interface LoginEvent {
  ts: number;
  kind: 'login' | 'step_up';
  username: string;
  userId: string | null;
  ip: string;
  userAgent: string;
  outcome: string;
}
/** What authenticating a credential yields. */
export type Authenticated =
  | { kind: 'session'; user: User; sid: string; credHash: string; csrf: string; stepUpAt: number | null }
  | { kind: 'token'; user: User; id: string; credHash: string; scope: TokenScope; tokenSelector: string | null };

export const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
export const SESSION_TTL_MS = 24 * 3600 * 1000;
const SESSION_PREFIX = 'tts_';
const TOKEN_PREFIX = 'tta_';

function toUser(r: Pick<UsersTable, 'id' | 'username' | 'role' | 'created_at' | 'host_selector'>): User {
  return { id: r.id, username: r.username, role: r.role as Role, createdAt: r.created_at, hostSelector: r.host_selector };
}
function toDetail(r: UsersTable): UserDetail {
  return {
    ...toUser(r),
    disabled: r.disabled === 1,
    totpEnabled: r.totp_secret !== null,
    lockedUntil: r.locked_until,
    failedLogins: r.failed_logins,
    updatedAt: r.updated_at,
    passwordChangedAt: r.password_changed_at,
  };
}
const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export interface AuthStoreEvents {
  /** credentials that stopped being valid: open WebSockets authenticated with them are closed */
  ended: [credHashes: string[]];
}

export class AuthStore extends EventEmitter<AuthStoreEvents> {
  private readonly db: Kysely<Tables>;
  /** A real argon2id hash of a random secret, verified against when the user does not exist, so timing does not tell. */
  readonly dummyHash: Promise<string>;
  sessionTtlMs = SESSION_TTL_MS;
  constructor(
    db: Kysely<any>,
    /** seals TOTP secrets at rest */
    private readonly secrets: SecretBox,
  ) {
    super();
    this.db = db as Kysely<Tables>;
    this.dummyHash = hash(randomBytes(16).toString('hex'));
  }

  private seal(column: 'totp_secret' | 'totp_pending', userId: string, value: string | null): string | null {
    return value === null ? null : this.secrets.seal(value, `users.${column}:${userId}`);
  }
  private unseal(column: 'totp_secret' | 'totp_pending', userId: string, value: string | null): string | null {
    return value === null ? null : this.secrets.open(value, `users.${column}:${userId}`);
  }

  /**
   * Seals TOTP secrets still stored in plaintext (from before sealing, or written by an older hub
   * sharing the database), and checks that every sealed one is under this hub's key: a hub given
   * another key file stops at start with what to copy, rather than failing logins later.
   */
  async sealStoredSecrets(): Promise<number> {
    const rows = await this.db
      .selectFrom('users')
      .select(['id', 'totp_secret', 'totp_pending'])
      .where((eb) => eb.or([eb('totp_secret', 'is not', null), eb('totp_pending', 'is not', null)]))
      .execute();
    let sealed = 0;
    for (const r of rows) {
      const set: { totp_secret?: string | null; totp_pending?: string | null } = {};
      for (const col of ['totp_secret', 'totp_pending'] as const) {
        const v = r[col];
        if (v === null) continue;
        if (SecretBox.isSealed(v)) this.secrets.check(v);
        else set[col] = this.seal(col, r.id, v);
      }
      if (!Object.keys(set).length) continue;
      // Only where the value is still the plaintext just read: a concurrent change wins.
      let q = this.db.updateTable('users').set(set).where('id', '=', r.id);
      for (const col of Object.keys(set) as ('totp_secret' | 'totp_pending')[]) q = q.where(col, '=', r[col]!);
      sealed += Number((await q.executeTakeFirst()).numUpdatedRows);
    }
    return sealed;
  }

  // --- users ---------------------------------------------------------------------------------

  async userCount(): Promise<number> {
    const r = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async createUser(username: string, password: string, role: Role, now: number, hostSelector: string | null = null): Promise<User> {
    const row: UsersTable = {
      id: randomUUID(),
      username,
      password_hash: await hash(password),
      role,
      created_at: now,
      updated_at: now,
      disabled: 0,
      host_selector: hostSelector,
      totp_secret: null,
      totp_pending: null,
      totp_last_step: 0,
      failed_logins: 0,
      locked_until: null,
      password_changed_at: now,
    };
    await this.db.insertInto('users').values(row).execute();
    return toUser(row);
  }

  async getUser(id: string): Promise<UserDetail | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDetail(r);
  }

  async findUser(username: string): Promise<UserDetail | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    return r && toDetail(r);
  }

  /** The row the login path needs, by name or id. */
  async loginRow(by: { username: string } | { id: string }): Promise<LoginRow | undefined> {
    let q = this.db.selectFrom('users').selectAll();
    q = 'id' in by ? q.where('id', '=', by.id) : q.where('username', '=', by.username);
    const r = await q.executeTakeFirst();
    return r && { ...toDetail(r), passwordHash: r.password_hash, totpSecret: this.unseal('totp_secret', r.id, r.totp_secret), totpLastStep: r.totp_last_step };
  }

  async listUsers(): Promise<UserDetail[]> {
    return (await this.db.selectFrom('users').selectAll().orderBy('username').execute()).map(toDetail);
  }

  async updateUser(id: string, patch: { role?: Role; hostSelector?: string | null; disabled?: boolean }, now: number): Promise<boolean> {
    const set: Partial<UsersTable> = { updated_at: now };
    if (patch.role !== undefined) set.role = patch.role;
    if (patch.hostSelector !== undefined) set.host_selector = patch.hostSelector;
    if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
    const r = await this.db.updateTable('users').set(set).where('id', '=', id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    if (patch.disabled) await this.endCredentials(id);
    return true;
  }

  async deleteUser(id: string): Promise<boolean> {
    await this.endCredentials(id);
    await this.db.deleteFrom('api_tokens').where('user_id', '=', id).execute();
    await this.db.deleteFrom('recovery_codes').where('user_id', '=', id).execute();
    const r = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Sets a new password and ends the user's sessions, except `keepSid` (a user changing their own keeps the session they are in). */
  async setPassword(id: string, password: string, now: number, keepSid?: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: await hash(password), password_changed_at: now, updated_at: now }).where('id', '=', id).execute();
    await this.endSessions(id, keepSid);
  }

  async verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
    return verify(passwordHash ?? (await this.dummyHash), password).catch(() => false);
  }

  /** Returns the user when the password is right; the same work is done whether or not the user exists. */
  async checkPassword(username: string, password: string): Promise<User | undefined> {
    const row = await this.loginRow({ username });
    const ok = await this.verifyPassword(row?.passwordHash, password);
    if (!row || !ok || row.disabled) return undefined;
    return { id: row.id, username: row.username, role: row.role, createdAt: row.createdAt, hostSelector: row.hostSelector };
  }

  // --- lockout -------------------------------------------------------------------------------

  /**
   * Counts a login attempt before its secret is checked, in one statement: the attempt is taken
   * only while the account is not locked, and the one that reaches `max` sets the lock. Parallel
   * guesses therefore never get more than `max` checks (a read, a check and a write would let every
   * guess in flight read the same old count). A lock that has run out starts a fresh count, so an
   * account gets the same number of tries after a lock as a name that is no account.
   *
   * Returns the count with this attempt, or `locked` with its end, or undefined for no such user.
   */
  async claimAttempt(username: string, max: number, lockUntil: number, now: number): Promise<{ userId: string; failures: number; lockedUntil: number | null } | { locked: number } | undefined> {
    const count = sql<number>`case when locked_until is not null then 1 else failed_logins + 1 end`;
    for (let tries = 0; ; tries++) {
      const claimed = await this.db
        .updateTable('users')
        .set({ failed_logins: count, locked_until: sql<number | null>`case when ${count} >= ${max} then cast(${lockUntil} as bigint) else null end` })
        .where('username', '=', username)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .returning(['id', 'failed_logins', 'locked_until'])
        .executeTakeFirst();
      if (claimed) return { userId: claimed.id, failures: claimed.failed_logins, lockedUntil: claimed.locked_until };
      const row = await this.db.selectFrom('users').select('locked_until').where('username', '=', username).executeTakeFirst();
      if (!row) return undefined;
      if (row.locked_until !== null && row.locked_until > now) return { locked: row.locked_until };
      // Unlocked by an admin between the two statements: claim again rather than check unclaimed.
      if (tries >= 3) return { locked: now + 1000 };
    }
  }

  /** Takes back an attempt that turned out not to be a guess (a right password still waiting for its one-time code). */
  async refundAttempt(id: string, lockSetByIt: number | null): Promise<void> {
    await this.db
      .updateTable('users')
      .set({
        failed_logins: sql<number>`case when failed_logins > 0 then failed_logins - 1 else 0 end`,
        ...(lockSetByIt !== null ? { locked_until: sql<number | null>`case when locked_until = ${lockSetByIt} then null else locked_until end` } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  async clearFailures(id: string): Promise<void> {
    await this.db.updateTable('users').set({ failed_logins: 0, locked_until: null }).where('id', '=', id).execute();
  }

  // --- TOTP ----------------------------------------------------------------------------------

  async setTotpPending(id: string, secret: string | null): Promise<void> {
    await this.db.updateTable('users').set({ totp_pending: this.seal('totp_pending', id, secret) }).where('id', '=', id).execute();
  }

  async totpPending(id: string): Promise<string | null> {
    return this.unseal('totp_pending', id, (await this.db.selectFrom('users').select('totp_pending').where('id', '=', id).executeTakeFirst())?.totp_pending ?? null);
  }

  /** Turns TOTP on with the secret and replaces the recovery codes (given as hashes). */
  async enableTotp(id: string, secret: string, step: number, codeHashes: string[], now: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('users').set({ totp_secret: this.seal('totp_secret', id, secret), totp_pending: null, totp_last_step: step, updated_at: now }).where('id', '=', id).execute();
      await tx.deleteFrom('recovery_codes').where('user_id', '=', id).execute();
      if (codeHashes.length) await tx.insertInto('recovery_codes').values(codeHashes.map((h) => ({ user_id: id, code_hash: h, used_at: null }))).execute();
    });
  }

  async disableTotp(id: string, now: number): Promise<void> {
    await this.db.updateTable('users').set({ totp_secret: null, totp_pending: null, totp_last_step: 0, updated_at: now }).where('id', '=', id).execute();
    await this.db.deleteFrom('recovery_codes').where('user_id', '=', id).execute();
  }

  /**
   * Accepts a TOTP time step only if it is later than the last one accepted, so a code seen by
   * someone else cannot be replayed within its 30 seconds. Atomic: two requests racing with the same code, one wins.
   */
  async claimTotpStep(id: string, step: number): Promise<boolean> {
    const r = await this.db.updateTable('users').set({ totp_last_step: step }).where('id', '=', id).where('totp_last_step', '<', step).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Uses up a recovery code; true if it was valid and unused. */
  async useRecoveryCode(id: string, code: string, now: number): Promise<boolean> {
    const h = sha256(code.trim().toLowerCase().replace(/[\s-]/g, ''));
    const r = await this.db.updateTable('recovery_codes').set({ used_at: now }).where('user_id', '=', id).where('code_hash', '=', h).where('used_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async recoveryCodesLeft(id: string): Promise<number> {
    const r = await this.db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', id).where('used_at', 'is', null).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  // --- sessions ------------------------------------------------------------------------------

  async createSession(userId: string, meta: { ip: string; userAgent: string; stepUpAt?: number | null }, now: number): Promise<{ token: string; expiresAt: number; sid: string; csrf: string }> {
    const token = SESSION_PREFIX + randomBytes(32).toString('base64url');
    const expiresAt = now + this.sessionTtlMs;
    // Ids are shown and typed as CLI arguments: a prefix keeps them from starting with '-'.
    const sid = 'se_' + randomBytes(9).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    await this.db
      .insertInto('sessions')
      .values({
        id_hash: sha256(token),
        user_id: userId,
        created_at: now,
        expires_at: expiresAt,
        last_used_at: now,
        ip: meta.ip.slice(0, 64),
        user_agent: meta.userAgent.slice(0, 256),
        sid,
        csrf,
        step_up_at: meta.stepUpAt === undefined ? now : meta.stepUpAt,
      })
      .execute();
    return { token, expiresAt, sid, csrf };
  }

  /** Looks a session or API token up by the hash of its secret (the lookup itself is the comparison, on a hash). */
  async authenticate(token: string, now: number, ip = ''): Promise<Authenticated | undefined> {
    if (token.length > 100) return undefined;
    if (token.startsWith(SESSION_PREFIX)) return this.authSession(token, now);
    if (token.startsWith(TOKEN_PREFIX)) return this.authToken(token, now, ip);
    return undefined;
  }

  private async authSession(token: string, now: number): Promise<Authenticated | undefined> {
    const h = sha256(token);
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id_hash', 'sessions.expires_at', 'sessions.last_used_at', 'sessions.sid', 'sessions.csrf', 'sessions.step_up_at', 'users.id', 'users.username', 'users.role', 'users.created_at', 'users.disabled', 'users.host_selector'])
      .where('sessions.id_hash', '=', h)
      .executeTakeFirst();
    if (!row || row.disabled || row.expires_at <= now) return undefined;
    // Defence in depth: the row was found by hash; confirm in constant time anyway.
    if (!sameHash(row.id_hash, h)) return undefined;
    if (now - row.last_used_at > 60_000) {
      await this.db.updateTable('sessions').set({ last_used_at: now }).where('id_hash', '=', h).execute();
    }
    return { kind: 'session', user: toUser(row), sid: row.sid, credHash: h, csrf: row.csrf, stepUpAt: row.step_up_at };
  }

  private async authToken(token: string, now: number, ip: string): Promise<Authenticated | undefined> {
    const h = sha256(token);
    const row = await this.db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .select(['api_tokens.id as tid', 'api_tokens.token_hash', 'api_tokens.scope', 'api_tokens.host_selector as token_selector', 'api_tokens.expires_at', 'api_tokens.revoked_at', 'api_tokens.last_used_at', 'users.id', 'users.username', 'users.role', 'users.created_at', 'users.disabled', 'users.host_selector'])
      .where('api_tokens.token_hash', '=', h)
      .executeTakeFirst();
    if (!row || row.disabled || row.revoked_at !== null || row.expires_at <= now) return undefined;
    if (!sameHash(row.token_hash, h)) return undefined;
    if (row.last_used_at === null || now - row.last_used_at > 60_000) {
      await this.db.updateTable('api_tokens').set({ last_used_at: now, last_used_ip: ip.slice(0, 64) }).where('token_hash', '=', h).execute();
    }
    return { kind: 'token', user: toUser(row), id: row.tid, credHash: h, scope: row.scope as TokenScope, tokenSelector: row.token_selector };
  }

  async markStepUp(credHash: string, now: number): Promise<void> {
    await this.db.updateTable('sessions').set({ step_up_at: now }).where('id_hash', '=', credHash).execute();
  }

  async deleteSession(token: string): Promise<void> {
    const h = sha256(token);
    await this.db.deleteFrom('sessions').where('id_hash', '=', h).execute();
    this.emit('ended', [h]);
  }

  async listSessions(userId: string | undefined, now: number): Promise<SessionInfo[]> {
    let q = this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.sid', 'sessions.user_id', 'users.username', 'sessions.created_at', 'sessions.expires_at', 'sessions.last_used_at', 'sessions.ip', 'sessions.user_agent', 'sessions.step_up_at'])
      .where('sessions.expires_at', '>', now);
    if (userId) q = q.where('sessions.user_id', '=', userId);
    const rows = await q.orderBy('sessions.created_at', 'desc').execute();
    return rows.map((r) => ({ id: r.sid, userId: r.user_id, username: r.username, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, ip: r.ip, userAgent: r.user_agent, stepUpAt: r.step_up_at }));
  }

  /** Ends one session by its public id; `userId` limits it to that user's sessions. */
  async revokeSession(sid: string, userId?: string): Promise<boolean> {
    let q = this.db.selectFrom('sessions').select('id_hash').where('sid', '=', sid);
    if (userId) q = q.where('user_id', '=', userId);
    const rows = await q.execute();
    if (!rows.length) return false;
    await this.db.deleteFrom('sessions').where('id_hash', 'in', rows.map((r) => r.id_hash)).execute();
    this.emit('ended', rows.map((r) => r.id_hash));
    return true;
  }

  async endSessions(userId: string, keepSid?: string): Promise<void> {
    let q = this.db.selectFrom('sessions').select('id_hash').where('user_id', '=', userId);
    if (keepSid) q = q.where('sid', '!=', keepSid);
    const rows = await q.execute();
    if (!rows.length) return;
    await this.db.deleteFrom('sessions').where('id_hash', 'in', rows.map((r) => r.id_hash)).execute();
    this.emit('ended', rows.map((r) => r.id_hash));
  }

  /** Sessions and API tokens of a user stop working (disabled or deleted). */
  private async endCredentials(userId: string): Promise<void> {
    await this.endSessions(userId);
    const toks = await this.db.selectFrom('api_tokens').select('token_hash').where('user_id', '=', userId).execute();
    if (toks.length) this.emit('ended', toks.map((t) => t.token_hash));
  }

  async pruneSessions(now: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
  }

  // --- API tokens ----------------------------------------------------------------------------

  async createApiToken(userId: string, o: { name: string; scope: TokenScope; hostSelector: string | null; expiresAt: number }, now: number): Promise<{ token: string; id: string }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = 'tk_' + randomBytes(9).toString('base64url');
    await this.db
      .insertInto('api_tokens')
      .values({ id, user_id: userId, name: o.name, token_hash: sha256(token), scope: o.scope, host_selector: o.hostSelector, created_at: now, expires_at: o.expiresAt, last_used_at: null, last_used_ip: null, revoked_at: null })
      .execute();
    return { token, id };
  }

  async listApiTokens(userId?: string): Promise<ApiTokenInfo[]> {
    let q = this.db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .select(['api_tokens.id', 'api_tokens.user_id', 'users.username', 'api_tokens.name', 'api_tokens.scope', 'api_tokens.host_selector', 'api_tokens.created_at', 'api_tokens.expires_at', 'api_tokens.last_used_at', 'api_tokens.last_used_ip', 'api_tokens.revoked_at']);
    if (userId) q = q.where('api_tokens.user_id', '=', userId);
    const rows = await q.orderBy('api_tokens.created_at', 'desc').execute();
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      username: r.username,
      name: r.name,
      scope: r.scope as TokenScope,
      hostSelector: r.host_selector,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      lastUsedAt: r.last_used_at,
      lastUsedIp: r.last_used_ip,
      revokedAt: r.revoked_at,
    }));
  }

  async revokeApiToken(id: string, now: number, userId?: string): Promise<boolean> {
    let q = this.db.selectFrom('api_tokens').select('token_hash').where('id', '=', id).where('revoked_at', 'is', null);
    if (userId) q = q.where('user_id', '=', userId);
    const row = await q.executeTakeFirst();
    if (!row) return false;
    await this.db.updateTable('api_tokens').set({ revoked_at: now }).where('id', '=', id).execute();
    this.emit('ended', [row.token_hash]);
    return true;
  }

  /** Revokes every active API token of a user at once (their open sockets close); returns how many. */
  async revokeApiTokensOf(userId: string, now: number): Promise<number> {
    const rows = await this.db.selectFrom('api_tokens').select(['id', 'token_hash']).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    if (!rows.length) return 0;
    await this.db.updateTable('api_tokens').set({ revoked_at: now }).where('id', 'in', rows.map((r) => r.id)).where('revoked_at', 'is', null).execute();
    this.emit('ended', rows.map((r) => r.token_hash));
    return rows.length;
  }

  // --- login history -------------------------------------------------------------------------

  async recordLogin(e: LoginEvent): Promise<void> {
    await this.db
      .insertInto('login_history')
      .values({ id: randomUUID(), ts: e.ts, kind: e.kind, username: e.username.slice(0, 64), user_id: e.userId, ip: e.ip.slice(0, 64), user_agent: e.userAgent.slice(0, 256), outcome: e.outcome })
      .execute();
  }

  async loginHistory(o: { userId?: string; limit: number; before?: number }): Promise<LoginEvent[]> {
    let q = this.db.selectFrom('login_history').selectAll();
    if (o.userId) q = q.where('user_id', '=', o.userId);
    if (o.before) q = q.where('ts', '<', o.before);
    const rows = await q.orderBy('ts', 'desc').limit(o.limit).execute();
    return rows.map((r) => ({ ts: r.ts, kind: r.kind as LoginEvent['kind'], username: r.username, userId: r.user_id, ip: r.ip, userAgent: r.user_agent, outcome: r.outcome }));
  }
}
