/**
 * The host inventory. Owns the `hosts` table; other modules go through HostStore.
 */
import { sql, type Kysely } from 'kysely';
import { randomUUID } from 'node:crypto';
import type { Capability, HostFacts, Labels, Selector } from '@tether/protocol';
import { matchesSelector } from '@tether/protocol';
import type { ModuleMigrations } from '../../db/migrate.js';
import { isPostgres } from '../../db/dialect.js';

interface HostsTable {
  id: string;
  hostname: string;
  facts: string;
  labels: string;
  capabilities: string;
  public_key: string;
  agent_version: string;
  search: string;
  created_at: number;
  last_seen: number | null;
  last_addr: string | null;
  revoked_at: number | null;
  enrolled_by: string | null;
}
interface Tables {
  hosts: HostsTable;
}

export const hostsMigrations: ModuleMigrations = {
  '0001_hosts_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('hosts')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('hostname', 'varchar(253)', (c) => c.notNull())
        .addColumn('facts', 'text', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('capabilities', 'text', (c) => c.notNull())
        .addColumn('public_key', 'varchar(64)', (c) => c.notNull())
        .addColumn('agent_version', 'varchar(64)', (c) => c.notNull())
        .addColumn('search', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen', 'bigint')
        .addColumn('last_addr', 'varchar(128)')
        .addColumn('revoked_at', 'bigint')
        .addColumn('enrolled_by', 'varchar(64)')
        .execute();
      await db.schema.createIndex('hosts_hostname').on('hosts').column('hostname').execute();
    },
  },
};

export interface Host {
  id: string;
  hostname: string;
  facts: HostFacts;
  labels: Labels;
  capabilities: Capability[];
  publicKey: string;
  agentVersion: string;
  createdAt: number;
  lastSeen: number | null;
  lastAddr: string | null;
  revokedAt: number | null;
  enrolledBy: string | null;
}

function searchText(facts: HostFacts): string {
  return [facts.hostname, ...facts.ips, ...facts.macs].join(' ').toLowerCase();
}

function toHost(r: HostsTable): Host {
  return {
    id: r.id,
    hostname: r.hostname,
    facts: JSON.parse(r.facts) as HostFacts,
    labels: JSON.parse(r.labels) as Labels,
    capabilities: JSON.parse(r.capabilities) as Capability[],
    publicKey: r.public_key,
    agentVersion: r.agent_version,
    createdAt: r.created_at,
    lastSeen: r.last_seen,
    lastAddr: r.last_addr,
    revokedAt: r.revoked_at,
    enrolledBy: r.enrolled_by,
  };
}

export interface HostQuery {
  /** Substring of hostname, or an IP or MAC (case-insensitive). */
  q?: string;
  selector?: Selector;
  includeRevoked?: boolean;
}

export class HostStore {
  private readonly db: Kysely<Tables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<Tables>;
  }

  async create(input: {
    facts: HostFacts;
    labels: Labels;
    capabilities: Capability[];
    publicKey: string;
    agentVersion: string;
    enrolledBy: string | null;
    addr: string | null;
    now: number;
  }): Promise<Host> {
    const row: HostsTable = {
      id: randomUUID(),
      hostname: input.facts.hostname,
      facts: JSON.stringify(input.facts),
      labels: JSON.stringify(input.labels),
      capabilities: JSON.stringify(input.capabilities),
      public_key: input.publicKey,
      agent_version: input.agentVersion,
      search: searchText(input.facts),
      created_at: input.now,
      last_seen: input.now,
      last_addr: input.addr,
      revoked_at: null,
      enrolled_by: input.enrolledBy,
    };
    await this.db.insertInto('hosts').values(row).execute();
    return toHost(row);
  }

  async get(id: string): Promise<Host | undefined> {
    const r = await this.db.selectFrom('hosts').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toHost(r) : undefined;
  }

  /**
   * Selectors are evaluated here rather than in SQL: label sets are small JSON objects and a fleet
   * of 10,000 hosts filters in a few milliseconds, with identical semantics on both databases.
   */
  async list(query: HostQuery = {}): Promise<Host[]> {
    let qb = this.db.selectFrom('hosts').selectAll().orderBy('hostname').orderBy('id');
    if (!query.includeRevoked) qb = qb.where('revoked_at', 'is', null);
    if (query.q) {
      const needle = query.q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c);
      // An explicit ESCAPE: SQLite has no default escape character, PostgreSQL uses backslash.
      qb = qb.where(sql<boolean>`search like ${`%${needle}%`} escape '\\'`);
    }
    const rows = await qb.execute();
    let hosts = rows.map(toHost);
    if (query.selector && query.selector.length) hosts = hosts.filter((h) => matchesSelector(h.labels, query.selector!));
    return hosts;
  }

  /**
   * Every host's name, labels (as stored JSON) and revocation, and nothing else: what caches of the
   * whole fleet refresh from (the alert scopes), without parsing facts they do not read.
   */
  async listBrief(): Promise<{ id: string; hostname: string; labelsJson: string; revokedAt: number | null }[]> {
    const rows = await this.db.selectFrom('hosts').select(['id', 'hostname', 'labels', 'revoked_at']).execute();
    return rows.map((r) => ({ id: r.id, hostname: r.hostname, labelsJson: r.labels, revokedAt: r.revoked_at }));
  }

  /**
   * What the fleet overview shows of every active host: the two facts it needs are read by the
   * database (JSON functions of each engine), so 10,000 hosts' facts are not parsed for them.
   */
  async listOverview(): Promise<{ id: string; hostname: string; labels: Labels; os: string | null; bootTime: number | null; agentVersion: string }[]> {
    const pg = isPostgres(this.db);
    const os = pg ? sql<string | null>`(facts::json -> 'os' ->> 'pretty')` : sql<string | null>`json_extract(facts, '$.os.pretty')`;
    const boot = pg ? sql<number | string | null>`(facts::json ->> 'bootTime')` : sql<number | string | null>`json_extract(facts, '$.bootTime')`;
    const rows = await this.db
      .selectFrom('hosts')
      .select(['id', 'hostname', 'labels', 'agent_version', os.as('os'), boot.as('boot')])
      .where('revoked_at', 'is', null)
      .orderBy('hostname')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, hostname: r.hostname, labels: JSON.parse(r.labels) as Labels, os: r.os ?? null, bootTime: r.boot === null || r.boot === undefined ? null : Number(r.boot), agentVersion: r.agent_version }));
  }

  async recordConnect(id: string, u: { facts: HostFacts; capabilities: Capability[]; agentVersion: string; addr: string | null; now: number }): Promise<void> {
    await this.db
      .updateTable('hosts')
      .set({
        hostname: u.facts.hostname,
        facts: JSON.stringify(u.facts),
        search: searchText(u.facts),
        capabilities: JSON.stringify(u.capabilities),
        agent_version: u.agentVersion,
        last_addr: u.addr,
        last_seen: u.now,
      })
      .where('id', '=', id)
      .execute();
  }

  async updateFacts(id: string, facts: HostFacts): Promise<void> {
    await this.db.updateTable('hosts').set({ hostname: facts.hostname, facts: JSON.stringify(facts), search: searchText(facts) }).where('id', '=', id).execute();
  }

  /** Batched last-seen update (heartbeats arrive far more often than they need persisting). */
  async touch(ids: string[], now: number): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      await this.db.updateTable('hosts').set({ last_seen: now }).where('id', 'in', ids.slice(i, i + 500)).execute();
    }
  }

  async setLabels(id: string, labels: Labels): Promise<boolean> {
    const r = await this.db.updateTable('hosts').set({ labels: JSON.stringify(labels) }).where('id', '=', id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async revoke(id: string, now: number): Promise<boolean> {
    const r = await this.db.updateTable('hosts').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('hosts').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
