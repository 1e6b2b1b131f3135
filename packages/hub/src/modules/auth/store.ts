/**
 * Accounts and sessions (the minimum the foundation needs: the first-run admin and a login
 * that yields a server-side session). Owns `users` and `sessions`.
 */
import type { Kysely } from 'kysely';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import type { ModuleMigrations } from '../../db/migrate.js';

interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  created_at: number;
  updated_at: number;
  disabled: number;
}
interface SessionsTable {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  last_used_at: number;
  ip: string;
  user_agent: string;
}
interface Tables {
  users: UsersTable;
  sessions: SessionsTable;
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
};

export type Role = 'admin' | 'operator' | 'viewer';
export interface User {
  id: string;
  username: string;
  role: Role;
  createdAt: number;
}

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
export const SESSION_TTL_MS = 24 * 3600 * 1000;

export class AuthStore {
  private readonly db: Kysely<Tables>;
  /** A real argon2id hash of a random secret, verified against when the user does not exist, so timing does not tell. */
  private dummyHash: Promise<string>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<Tables>;
    this.dummyHash = hash(randomBytes(16).toString('hex'));
  }

  async userCount(): Promise<number> {
    const r = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async createUser(username: string, password: string, role: Role, now: number): Promise<User> {
    const row: UsersTable = {
      id: randomUUID(),
      username,
      password_hash: await hash(password),
      role,
      created_at: now,
      updated_at: now,
      disabled: 0,
    };
    await this.db.insertInto('users').values(row).execute();
    return { id: row.id, username, role, createdAt: now };
  }

  /** Returns the user when the password is right; the same work is done whether or not the user exists. */
  async checkPassword(username: string, password: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    const ok = await verify(row?.password_hash ?? (await this.dummyHash), password).catch(() => false);
    if (!row || !ok || row.disabled) return undefined;
    return { id: row.id, username: row.username, role: row.role as Role, createdAt: row.created_at };
  }

  async createSession(userId: string, meta: { ip: string; userAgent: string }, now: number): Promise<{ token: string; expiresAt: number }> {
    const token = 'tts_' + randomBytes(32).toString('base64url');
    const expiresAt = now + SESSION_TTL_MS;
    await this.db
      .insertInto('sessions')
      .values({ id_hash: sha256(token), user_id: userId, created_at: now, expires_at: expiresAt, last_used_at: now, ip: meta.ip.slice(0, 64), user_agent: meta.userAgent.slice(0, 256) })
      .execute();
    return { token, expiresAt };
  }

  /** Looks a session up by the hash of its token (the lookup itself is the comparison, on a hash). */
  async authenticate(token: string, now: number): Promise<User | undefined> {
    if (!token.startsWith('tts_') || token.length > 100) return undefined;
    const h = sha256(token);
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id_hash', 'sessions.expires_at', 'sessions.last_used_at', 'users.id', 'users.username', 'users.role', 'users.created_at', 'users.disabled'])
      .where('sessions.id_hash', '=', h)
      .executeTakeFirst();
    if (!row || row.disabled || row.expires_at <= now) return undefined;
    // Defence in depth: the row was found by hash; confirm in constant time anyway.
    if (!timingSafeEqual(Buffer.from(row.id_hash), Buffer.from(h))) return undefined;
    if (now - row.last_used_at > 60_000) {
      await this.db.updateTable('sessions').set({ last_used_at: now }).where('id_hash', '=', h).execute();
    }
    return { id: row.id, username: row.username, role: row.role as Role, createdAt: row.created_at };
  }

  async deleteSession(token: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', sha256(token)).execute();
  }

  async pruneSessions(now: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
  }
}
