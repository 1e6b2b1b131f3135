/**
 * The cluster's rows in the shared PostgreSQL: which hubs are alive (a heartbeat row each), the
 * leases that pick the one hub running each singleton, and facts every hub must agree on.
 *
 * Liveness here is judged by one clock, the database's (`clock_timestamp()`), so hubs whose clocks
 * disagree still agree on who holds a lease. Like heartbeats on the agent link, this is real
 * elapsed time, not the hub's clock that tests move across days.
 */
import { sql, type Kysely } from 'kysely';
import type { ModuleMigrations } from '../db/migrate.js';

export const clusterMigrations: ModuleMigrations = {
  '0400_cluster_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('cluster_hubs')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('protocol', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('seen_at', 'bigint', (c) => c.notNull())
        .addColumn('agents', 'integer', (c) => c.notNull())
        .addColumn('draining', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cluster_leases')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('holder', 'varchar(64)', (c) => c.notNull())
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cluster_meta')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

/** Milliseconds since the epoch on the database's clock, at the moment the statement runs. */
const DB_NOW = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export interface HubRow {
  id: string;
  url: string;
  version: string;
  protocol: number;
  startedAt: number;
  seenAt: number;
  agents: number;
  draining: boolean;
}

export class ClusterStore {
  constructor(private readonly db: Kysely<any>) {}

  /** The database's time now (ms). */
  async now(): Promise<number> {
    const r = await sql<{ t: string }>`select ${DB_NOW} as t`.execute(this.db);
    return Number(r.rows[0]!.t);
  }

  async beat(h: Omit<HubRow, 'seenAt' | 'startedAt'> & { startedAt?: number }): Promise<void> {
    await this.db
      .insertInto('cluster_hubs')
      .values({ id: h.id, url: h.url, version: h.version, protocol: h.protocol, started_at: h.startedAt ?? DB_NOW, seen_at: DB_NOW, agents: h.agents, draining: h.draining ? 1 : 0 })
      .onConflict((oc) => oc.column('id').doUpdateSet({ url: h.url, version: h.version, protocol: h.protocol, seen_at: DB_NOW, agents: h.agents, draining: h.draining ? 1 : 0 }))
      .execute();
  }

  /** Hubs seen within `withinMs` of the database's now. */
  async live(withinMs: number): Promise<HubRow[]> {
    const rows = await this.db
      .selectFrom('cluster_hubs')
      .selectAll()
      .where('seen_at', '>', sql<number>`${DB_NOW} - ${withinMs}`)
      .orderBy('started_at')
      .execute();
    return rows.map((r) => ({ id: r.id, url: r.url, version: r.version, protocol: Number(r.protocol), startedAt: Number(r.started_at), seenAt: Number(r.seen_at), agents: Number(r.agents), draining: Number(r.draining) === 1 }));
  }

  async leave(id: string): Promise<void> {
    await this.db.deleteFrom('cluster_hubs').where('id', '=', id).execute();
  }

  /** Rows of hubs not seen for `olderThanMs` (a killed hub leaves its row behind). */
  async prune(olderThanMs: number): Promise<number> {
    const r = await this.db.deleteFrom('cluster_hubs').where('seen_at', '<', sql<number>`${DB_NOW} - ${olderThanMs}`).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Stores `value` under `name` unless one is there; returns what is there. */
  async agreeOn(name: string, value: string): Promise<string> {
    await this.db.insertInto('cluster_meta').values({ name, value }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const r = await this.db.selectFrom('cluster_meta').select('value').where('name', '=', name).executeTakeFirstOrThrow();
    return r.value as string;
  }

  /**
   * Takes or renews lease `name` for `holder` until `ttlMs` from the database's now. Succeeds when
   * the holder already has it or it has expired; a change of holder increments the epoch (the
   * fencing token: writes made under an old epoch can be told apart and refused). Returns the
   * epoch held, or undefined when another hub holds it.
   */
  async acquire(name: string, holder: string, ttlMs: number): Promise<number | undefined> {
    const r = await sql<{ epoch: string }>`
      insert into cluster_leases (name, holder, epoch, expires_at) values (${name}, ${holder}, 1, ${DB_NOW} + ${ttlMs})
      on conflict (name) do update set
        epoch = case when cluster_leases.holder = excluded.holder then cluster_leases.epoch else cluster_leases.epoch + 1 end,
        holder = excluded.holder,
        expires_at = excluded.expires_at
      where cluster_leases.holder = excluded.holder or cluster_leases.expires_at < ${DB_NOW}
      returning epoch`.execute(this.db);
    return r.rows[0] ? Number(r.rows[0].epoch) : undefined;
  }

  /** Gives the lease up now (a stopping or draining hub), so another takes it without waiting for expiry. */
  async release(name: string, holder: string): Promise<void> {
    await this.db.updateTable('cluster_leases').set({ expires_at: 0 }).where('name', '=', name).where('holder', '=', holder).execute();
  }

  async leases(): Promise<{ name: string; holder: string; epoch: number; expiresAt: number }[]> {
    const rows = await this.db.selectFrom('cluster_leases').selectAll().orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, holder: r.holder, epoch: Number(r.epoch), expiresAt: Number(r.expires_at) }));
  }

  /**
   * True when `holder` still holds `name` at `epoch` and it has not expired: the fencing check, run
   * through the executor of the transaction whose writes it guards (`for share` keeps the row from
   * changing hands until that transaction ends).
   */
  static async stillHolds(ex: Kysely<any>, name: string, holder: string, epoch: number): Promise<boolean> {
    const r = await sql<{ ok: number }>`select 1 as ok from cluster_leases where name = ${name} and holder = ${holder} and epoch = ${epoch} and expires_at > ${DB_NOW} for share`.execute(ex);
    return r.rows.length === 1;
  }
}
