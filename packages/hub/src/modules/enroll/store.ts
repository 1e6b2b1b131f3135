/**
 * Enrollment tokens. Owns `enroll_tokens`. A token is shown once; only its SHA-256 is stored.
 */
import type { Kysely } from 'kysely';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Labels } from '@tether/protocol';
import type { ModuleMigrations } from '../../db/migrate.js';

interface EnrollTokensTable {
  id: string;
  name: string;
  token_hash: string;
  labels: string;
  created_at: number;
  created_by: string;
  expires_at: number;
  single_use: number;
  uses: number;
  last_used_at: number | null;
  revoked_at: number | null;
}
interface Tables {
  enroll_tokens: EnrollTokensTable;
}

export const enrollMigrations: ModuleMigrations = {
  '0002_enroll_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('enroll_tokens')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(128)', (c) => c.notNull())
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('single_use', 'integer', (c) => c.notNull())
        .addColumn('uses', 'integer', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
    },
  },
};

export interface EnrollToken {
  id: string;
  name: string;
  labels: Labels;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  singleUse: boolean;
  uses: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const TOKEN_PREFIX = 'tte_';
export const hashToken = (t: string): string => createHash('sha256').update(t, 'utf8').digest('hex');

function toToken(r: EnrollTokensTable): EnrollToken {
  return {
    id: r.id,
    name: r.name,
    labels: JSON.parse(r.labels) as Labels,
    createdAt: r.created_at,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    singleUse: r.single_use === 1,
    uses: r.uses,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export type ConsumeResult = { ok: true; token: EnrollToken } | { ok: false; code: 'bad_token' | 'token_expired' | 'token_used'; reason: string };

export class EnrollStore {
  private readonly db: Kysely<Tables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<Tables>;
  }

  async create(input: { name?: string; labels: Labels; expiresInSec: number; singleUse: boolean; createdBy: string; now: number }): Promise<{ token: string; record: EnrollToken }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const row: EnrollTokensTable = {
      id: randomUUID(),
      name: input.name ?? '',
      token_hash: hashToken(token),
      labels: JSON.stringify(input.labels),
      created_at: input.now,
      created_by: input.createdBy,
      expires_at: input.now + input.expiresInSec * 1000,
      single_use: input.singleUse ? 1 : 0,
      uses: 0,
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto('enroll_tokens').values(row).execute();
    return { token, record: toToken(row) };
  }

  async list(): Promise<EnrollToken[]> {
    const rows = await this.db.selectFrom('enroll_tokens').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map(toToken);
  }

  async revoke(id: string, now: number): Promise<boolean> {
    const r = await this.db.updateTable('enroll_tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Whether a token would be accepted now, without using it (install.sh asks before it installs anything). */
  async check(token: string, now: number): Promise<{ ok: true } | { ok: false; code: string; reason: string }> {
    const row = await this.db.selectFrom('enroll_tokens').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
    if (!row || row.revoked_at !== null) return { ok: false, code: 'bad_token', reason: 'unknown or revoked enrollment token' };
    if (row.expires_at <= now) return { ok: false, code: 'token_expired', reason: 'enrollment token expired' };
    if (row.single_use === 1 && row.uses > 0) return { ok: false, code: 'token_used', reason: 'single-use enrollment token already used' };
    return { ok: true };
  }

  /**
   * Checks a presented token and counts one use. A single-use token is claimed with a
   * conditional update, so two agents racing with the same token cannot both enroll.
   */
  async consume(token: string, now: number): Promise<ConsumeResult> {
    const row = await this.db.selectFrom('enroll_tokens').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
    if (!row || row.revoked_at !== null) return { ok: false, code: 'bad_token', reason: 'unknown or revoked enrollment token' };
    if (row.expires_at <= now) return { ok: false, code: 'token_expired', reason: 'enrollment token expired' };
    let q = this.db.updateTable('enroll_tokens').set((eb) => ({ uses: eb('uses', '+', 1), last_used_at: now })).where('id', '=', row.id);
    if (row.single_use === 1) q = q.where('uses', '=', 0);
    const r = await q.executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return { ok: false, code: 'token_used', reason: 'single-use enrollment token already used' };
    return { ok: true, token: toToken({ ...row, uses: row.uses + 1, last_used_at: now }) };
  }
}
