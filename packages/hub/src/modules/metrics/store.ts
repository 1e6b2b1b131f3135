/**
 * Tiered metric history. Owns metric_layouts, metric_raw, metric_1m_recent, metric_1m, metric_1h,
 * process_top and host_inventory.
 *
 *  raw        one packed row per host, report kind and sample: every value of that sample.
 *             Cheap to write (one row per report) and to read for short ranges.
 *  1m recent  one packed row per host and minute (avg, min, max, count of each series) for the
 *             hours not yet compacted.
 *  1m         per series, one row per hour holding 60 × (avg, min, max): a 30-day chart of one
 *             series reads 720 rows instead of 43,200.
 *  1h         one packed row per host and hour (avg, min, max of each series).
 *
 * Values are float64; NaN marks a missing value.
 */
import { sql, type Kysely } from 'kysely';
import { createHash } from 'node:crypto';
import type SQLite from 'better-sqlite3';
import type { ModuleMigrations } from '../../db/migrate.js';
import { blobType, isPostgres } from '../../db/dialect.js';
import { HOUR, MINUTE, packValues, unpackValues } from './codec.js';
import { systemClock, type Clock } from '../../clock.js';

interface Tables {
  metric_layouts: { id: number; host_id: string; hash: string; series: string; created_at: number };
  metric_raw: { host_id: string; kind: number; ts: number; layout_id: number; data: Uint8Array };
  metric_1m_recent: { host_id: string; ts: number; layout_id: number; data: Uint8Array };
  metric_1m: { host_id: string; series: string; hour: number; data: Uint8Array };
  metric_1h: { host_id: string; ts: number; layout_id: number; data: Uint8Array };
  process_top: { host_id: string; ts: number; data: string };
  host_inventory: { host_id: string; ts: number; data: string };
}

export const metricsMigrations: ModuleMigrations = {
  '0004_metrics_init': {
    async up(db: Kysely<any>) {
      const blob = blobType(db);
      // PostgreSQL needs an identity column; on SQLite an INTEGER PRIMARY KEY is the rowid and autoincrements.
      await db.schema
        .createTable('metric_layouts')
        .addColumn('id', 'integer', (c) => (isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey()))
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('series', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('metric_layouts_host_hash', ['host_id', 'hash'])
        .execute();
      await db.schema
        .createTable('metric_raw')
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('kind', 'integer', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('layout_id', 'integer', (c) => c.notNull())
        .addColumn('data', blob, (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_raw_pk', ['host_id', 'ts', 'kind'])
        .execute();
      await db.schema
        .createTable('metric_1m_recent')
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('layout_id', 'integer', (c) => c.notNull())
        .addColumn('data', blob, (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_1m_recent_pk', ['host_id', 'ts'])
        .execute();
      await db.schema
        .createTable('metric_1m')
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('series', 'varchar(300)', (c) => c.notNull())
        .addColumn('hour', 'bigint', (c) => c.notNull())
        .addColumn('data', blob, (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_1m_pk', ['host_id', 'series', 'hour'])
        .execute();
      await db.schema.createIndex('metric_1m_hour').on('metric_1m').column('hour').execute();
      await db.schema
        .createTable('metric_1h')
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('layout_id', 'integer', (c) => c.notNull())
        .addColumn('data', blob, (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_1h_pk', ['host_id', 'ts'])
        .execute();
      await db.schema
        .createTable('process_top')
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('process_top_pk', ['host_id', 'ts'])
        .execute();
      await db.schema
        .createTable('host_inventory')
        .addColumn('host_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      for (const t of ['metric_raw', 'metric_1m_recent', 'metric_1h', 'process_top']) {
        await db.schema.createIndex(`${t}_ts`).on(t).column('ts').execute();
      }
    },
  },
};

export interface RawRow {
  hostId: string;
  kind: number;
  ts: number;
  layoutId: number;
  values: ArrayLike<number>;
}

/** A rolled-up bucket: per series avg, min, max and the number of samples behind them. */
export interface Bucket {
  ts: number;
  keys: string[];
  avg: Float64Array;
  min: Float64Array;
  max: Float64Array;
  count: Float64Array;
}

/** A metric_1m_recent row as written. */
type MinuteRow = { host_id: string; ts: number; layout_id: number; data: Buffer };

export type Point = [ts: number, avg: number, min: number, max: number];

const chunkSlots = HOUR / MINUTE; // 60
/** Layouts per host compared before hashing: the report kinds (6) and the minute bucket's union. */
const RECENT_LAYOUTS = 8;

export function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class MetricStore {
  private readonly db: Kysely<Tables>;
  private readonly layoutIds = new Map<string, number>(); // hostId|hash -> id
  private readonly layoutKeys = new Map<number, string[]>();
  private readonly recentLayouts = new Map<string, { keys: readonly string[]; id: number }[]>();

  private fast: { raw: (rows: RawRow[]) => void; minutes: (rows: MinuteRow[]) => void } | undefined;

  /**
   * `sqlite`: the connection under `db` when it is SQLite. The two writes that run for every report
   * and every closed minute then go through prepared statements in one transaction, instead of a
   * query built and compiled by Kysely each time (a fifth of the hub's CPU under a 10,000-agent
   * ingest). They still hold Kysely's connection while they run, so they never land inside
   * someone else's transaction.
   */
  constructor(
    db: Kysely<any>,
    private readonly sqlite?: SQLite.Database,
    private readonly clock: Clock = systemClock,
  ) {
    this.db = db as Kysely<Tables>;
  }

  private fastWrites(): NonNullable<MetricStore['fast']> | undefined {
    if (!this.sqlite) return undefined;
    if (!this.fast) {
      const raw = this.sqlite.prepare('INSERT INTO metric_raw (host_id, kind, ts, layout_id, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (host_id, ts, kind) DO NOTHING');
      const m1 = this.sqlite.prepare('INSERT INTO metric_1m_recent (host_id, ts, layout_id, data) VALUES (?, ?, ?, ?) ON CONFLICT (host_id, ts) DO UPDATE SET layout_id = excluded.layout_id, data = excluded.data');
      this.fast = {
        raw: this.sqlite.transaction((rows: RawRow[]) => {
          for (const r of rows) raw.run(r.hostId, r.kind, r.ts, r.layoutId, packValues(r.values));
        }),
        minutes: this.sqlite.transaction((rows: MinuteRow[]) => {
          for (const r of rows) m1.run(r.host_id, r.ts, r.layout_id, r.data);
        }),
      };
    }
    return this.fast;
  }

  // --- layouts ---------------------------------------------------------------------------------

  /**
   * The id of a host's layout with exactly these keys, created when new. A host sends the same few
   * layouts again and again (one per report kind, one per minute bucket), so the last ones used are
   * compared key by key before anything is hashed.
   */
  private layoutForCached(hostId: string, keys: readonly string[]): number | undefined {
    const recent = this.recentLayouts.get(hostId);
    if (!recent) return undefined;
    for (let i = 0; i < recent.length; i++) {
      const r = recent[i]!;
      if (sameKeys(r.keys, keys)) {
        if (i > 0) {
          recent.splice(i, 1);
          recent.unshift(r);
        }
        return r.id;
      }
    }
    return undefined;
  }

  private remember(hostId: string, keys: readonly string[], id: number): void {
    let recent = this.recentLayouts.get(hostId);
    if (!recent) this.recentLayouts.set(hostId, (recent = []));
    recent.unshift({ keys, id });
    if (recent.length > RECENT_LAYOUTS) recent.pop();
  }

  async layoutFor(hostId: string, keys: string[]): Promise<number> {
    return (await this.layoutsFor([{ hostId, keys }]))[0]!;
  }

  /**
   * Layout ids for many rows at once. Those not yet known (every host's first reports after a hub
   * start: 10,000 hosts at once) are created and read back with one statement each per 200, not
   * two queries per row.
   */
  layoutsFor(items: readonly { hostId: string; keys: readonly string[] }[]): Promise<number[]> {
    return this.layoutsIn(this.db, items);
  }

  /**
   * `layoutsFor` through the executor `ex`: the store's own handle, or a transaction, whose
   * queries must all go through it (on SQLite, a query on the store's handle would wait for the one
   * connection that the transaction holds, for ever). What a transaction creates is not cached: if
   * it rolls back, the id is free again and may name another layout later.
   */
  private async layoutsIn(ex: Kysely<Tables>, items: readonly { hostId: string; keys: readonly string[] }[]): Promise<number[]> {
    const cache = ex === this.db;
    const out = new Array<number>(items.length);
    const missing = new Map<string, { hostId: string; keys: readonly string[]; hash: string; at: number[] }>();
    for (let i = 0; i < items.length; i++) {
      const { hostId, keys } = items[i]!;
      const fast = this.layoutForCached(hostId, keys);
      if (fast !== undefined) {
        out[i] = fast;
        continue;
      }
      const hash = createHash('sha1').update(keys.join('\n')).digest('hex');
      const ck = `${hostId}|${hash}`;
      const cached = this.layoutIds.get(ck);
      if (cached !== undefined) {
        this.remember(hostId, keys, cached);
        out[i] = cached;
        continue;
      }
      const m = missing.get(ck);
      if (m) m.at.push(i);
      else missing.set(ck, { hostId, keys, hash, at: [i] });
    }
    const todo = [...missing].map(([ck, m]) => ({ ck, ...m }));
    for (let j = 0; j < todo.length; j += 200) {
      const part = todo.slice(j, j + 200);
      const now = this.clock.now();
      await ex
        .insertInto('metric_layouts')
        .values(part.map((m) => ({ host_id: m.hostId, hash: m.hash, series: JSON.stringify(m.keys), created_at: now })) as never)
        .onConflict((oc) => oc.columns(['host_id', 'hash']).doNothing())
        .execute();
      const rows = await ex
        .selectFrom('metric_layouts')
        .select(['id', 'host_id', 'hash'])
        .where((eb) => eb.or(part.map((m) => eb.and([eb('host_id', '=', m.hostId), eb('hash', '=', m.hash)]))))
        .execute();
      const ids = new Map(rows.map((r) => [`${r.host_id}|${r.hash}`, r.id]));
      for (const m of part) {
        const id = ids.get(m.ck);
        if (id === undefined) throw new Error(`metric layout of host ${m.hostId} was not stored`);
        if (cache) {
          this.layoutIds.set(m.ck, id);
          this.layoutKeys.set(id, m.keys as string[]);
          this.remember(m.hostId, m.keys, id);
        }
        for (const i of m.at) out[i] = id;
      }
    }
    return out;
  }

  keysOf(layoutId: number): Promise<string[]> {
    return this.keysIn(this.db, layoutId);
  }

  /** A layout's keys through the executor `ex` (see layoutsIn: a transaction's reads are not cached). */
  private async keysIn(ex: Kysely<Tables>, layoutId: number): Promise<string[]> {
    const cached = this.layoutKeys.get(layoutId);
    if (cached) return cached;
    const row = await ex.selectFrom('metric_layouts').select('series').where('id', '=', layoutId).executeTakeFirst();
    const keys = row ? (JSON.parse(row.series) as string[]) : [];
    if (ex === this.db && row) this.layoutKeys.set(layoutId, keys);
    return keys;
  }

  /** Every series key a host has ever reported (the union of its layouts). */
  async hostKeys(hostId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('metric_layouts').select(['id', 'series']).where('host_id', '=', hostId).execute();
    const keys = new Set<string>();
    for (const r of rows) for (const k of JSON.parse(r.series) as string[]) keys.add(k);
    return [...keys].sort();
  }

  // --- raw -------------------------------------------------------------------------------------

  async insertRaw(rows: RawRow[]): Promise<void> {
    const fast = this.fastWrites();
    if (fast) return this.db.connection().execute(async () => fast.raw(rows));
    for (let i = 0; i < rows.length; i += 200) {
      const part = rows.slice(i, i + 200);
      await this.db
        .insertInto('metric_raw')
        .values(part.map((r) => ({ host_id: r.hostId, kind: r.kind, ts: r.ts, layout_id: r.layoutId, data: packValues(r.values) })))
        .onConflict((oc) => oc.columns(['host_id', 'ts', 'kind']).doNothing())
        .execute();
    }
  }

  /** Raw samples of one host in [from, to), each as a map of the wanted keys (all when no matcher). */
  async readRaw(hostId: string, from: number, to: number, want?: (key: string) => boolean): Promise<{ ts: number; values: Record<string, number> }[]> {
    const rows = await this.db.selectFrom('metric_raw').select(['ts', 'layout_id', 'data']).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).orderBy('ts').execute();
    const out: { ts: number; values: Record<string, number> }[] = [];
    for (const r of rows) {
      const keys = await this.keysOf(r.layout_id);
      const vals = unpackValues(r.data);
      const values: Record<string, number> = {};
      let any = false;
      for (let i = 0; i < keys.length; i++) {
        if (want && !want(keys[i]!)) continue;
        const v = vals[i]!;
        if (!Number.isNaN(v)) {
          values[keys[i]!] = v;
          any = true;
        }
      }
      if (any) out.push({ ts: r.ts, values });
    }
    return out;
  }

  // --- 1-minute buckets ------------------------------------------------------------------------

  private packBucket(b: Bucket): Buffer {
    const n = b.keys.length;
    const all = new Float64Array(4 * n);
    all.set(b.avg, 0);
    all.set(b.min, n);
    all.set(b.max, 2 * n);
    all.set(b.count, 3 * n);
    return packValues(all);
  }

  private async unpackBucket(ex: Kysely<Tables>, ts: number, layoutId: number, data: Uint8Array): Promise<Bucket> {
    const keys = await this.keysIn(ex, layoutId);
    const v = unpackValues(data);
    const n = keys.length;
    return { ts, keys, avg: v.subarray(0, n), min: v.subarray(n, 2 * n), max: v.subarray(2 * n, 3 * n), count: v.subarray(3 * n, 4 * n) };
  }

  async upsertMinutes(hostId: string, buckets: Bucket[]): Promise<void> {
    await this.upsertMinuteRows(buckets.map((bucket) => ({ hostId, bucket })));
  }

  /** Minute buckets of many hosts, written with multi-row upserts. */
  async upsertMinuteRows(items: { hostId: string; bucket: Bucket }[]): Promise<void> {
    const ids = await this.layoutsFor(items.map(({ hostId, bucket }) => ({ hostId, keys: bucket.keys })));
    const rows: MinuteRow[] = items.map(({ hostId, bucket }, i) => ({ host_id: hostId, ts: bucket.ts, layout_id: ids[i]!, data: this.packBucket(bucket) }));
    const fast = this.fastWrites();
    if (fast) return this.db.connection().execute(async () => fast.minutes(rows));
    for (let i = 0; i < rows.length; i += 200) {
      await this.db
        .insertInto('metric_1m_recent')
        .values(rows.slice(i, i + 200))
        .onConflict((oc) => oc.columns(['host_id', 'ts']).doUpdateSet({ layout_id: (eb) => eb.ref('excluded.layout_id'), data: (eb) => eb.ref('excluded.data') }))
        .execute();
    }
  }

  /** Hours with uncompacted minutes that ended before `before` (only whole hours are read). */
  async hoursToCompact(before: number, limit = 500): Promise<{ hostId: string; hour: number }[]> {
    const lastHourEnd = Math.floor(before / HOUR) * HOUR;
    const rows = await this.db
      .selectFrom('metric_1m_recent')
      .select(['host_id', sql<number>`min(ts)`.as('first')])
      .where('ts', '<', lastHourEnd)
      .groupBy('host_id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ hostId: r.host_id, hour: Math.floor(Number(r.first) / HOUR) * HOUR }));
  }

  /**
   * Moves one host-hour of minute buckets into per-series hourly chunks (merged with a chunk
   * already there, for minutes that arrived late) and writes the hour's rollup.
   */
  async compactHour(hostId: string, hour: number): Promise<void> {
    const pg = isPostgres(this.db);
    await this.db.transaction().execute(async (trx) => {
      // On PostgreSQL the minute rows are locked: a late minute written meanwhile waits for this
      // transaction and is then compacted by the next run, and a second compactor of the same hour
      // (another hub) finds them gone. SQLite runs one transaction at a time anyway.
      const rows = await trx
        .selectFrom('metric_1m_recent')
        .select(['ts', 'layout_id', 'data'])
        .where('host_id', '=', hostId)
        .where('ts', '>=', hour)
        .where('ts', '<', hour + HOUR)
        .$if(pg, (q) => q.forUpdate())
        .execute();
      if (rows.length === 0) return;
      const chunks = new Map<string, Float64Array>();
      const existing = await trx.selectFrom('metric_1m').select(['series', 'data']).where('host_id', '=', hostId).where('hour', '=', hour).execute();
      for (const e of existing) chunks.set(e.series, unpackValues(e.data).slice());
      for (const r of rows) {
        const b = await this.unpackBucket(trx, r.ts, r.layout_id, r.data);
        const slot = Math.floor((r.ts - hour) / MINUTE);
        for (let i = 0; i < b.keys.length; i++) {
          if (!(b.count[i]! > 0)) continue;
          let c = chunks.get(b.keys[i]!);
          if (!c) {
            c = new Float64Array(chunkSlots * 4).fill(NaN);
            chunks.set(b.keys[i]!, c);
          }
          c[slot * 4] = b.avg[i]!;
          c[slot * 4 + 1] = b.min[i]!;
          c[slot * 4 + 2] = b.max[i]!;
          c[slot * 4 + 3] = b.count[i]!;
        }
      }
      const keys = [...chunks.keys()].sort();
      const values = keys.map((k) => ({ host_id: hostId, series: k, hour, data: packValues(chunks.get(k)!) }));
      for (let i = 0; i < values.length; i += 200) {
        await trx
          .insertInto('metric_1m')
          .values(values.slice(i, i + 200))
          .onConflict((oc) => oc.columns(['host_id', 'series', 'hour']).doUpdateSet({ data: (eb) => eb.ref('excluded.data') }))
          .execute();
      }
      // The hour's rollup, weighted by sample counts.
      const n = keys.length;
      const h = new Float64Array(4 * n).fill(NaN);
      keys.forEach((k, i) => {
        const c = chunks.get(k)!;
        let sum = 0;
        let cnt = 0;
        let mn = Infinity;
        let mx = -Infinity;
        for (let s = 0; s < chunkSlots; s++) {
          const w = c[s * 4 + 3]!;
          if (!(w > 0)) continue;
          sum += c[s * 4]! * w;
          cnt += w;
          mn = Math.min(mn, c[s * 4 + 1]!);
          mx = Math.max(mx, c[s * 4 + 2]!);
        }
        if (cnt > 0) {
          h[i] = sum / cnt;
          h[n + i] = mn;
          h[2 * n + i] = mx;
          h[3 * n + i] = cnt;
        }
      });
      const [layoutId] = await this.layoutsIn(trx, [{ hostId, keys }]);
      await trx
        .insertInto('metric_1h')
        .values({ host_id: hostId, ts: hour, layout_id: layoutId!, data: packValues(h) })
        .onConflict((oc) => oc.columns(['host_id', 'ts']).doUpdateSet({ layout_id: layoutId!, data: packValues(h) }))
        .execute();
      // Only the minutes read above: one inserted since (a late minute) stays for the next run.
      await trx
        .deleteFrom('metric_1m_recent')
        .where('host_id', '=', hostId)
        .where(
          'ts',
          'in',
          rows.map((r) => r.ts),
        )
        .execute();
    });
  }

  /** 1-minute points of the wanted series in [from, to): compacted chunks plus recent minutes. */
  async read1m(hostId: string, from: number, to: number, want: string[] | ((key: string) => boolean)): Promise<Map<string, Point[]>> {
    const match = typeof want === 'function' ? want : (k: string) => want.includes(k);
    const out = new Map<string, Point[]>();
    const push = (k: string, p: Point) => {
      let a = out.get(k);
      if (!a) out.set(k, (a = []));
      a.push(p);
    };
    let q = this.db.selectFrom('metric_1m').select(['series', 'hour', 'data']).where('host_id', '=', hostId).where('hour', '>=', Math.floor(from / HOUR) * HOUR).where('hour', '<', to);
    if (Array.isArray(want)) q = q.where('series', 'in', want.length ? want : ['']);
    const chunks = await q.orderBy('hour').execute();
    for (const c of chunks) {
      if (!match(c.series)) continue;
      const v = unpackValues(c.data);
      for (let s = 0; s < chunkSlots; s++) {
        const ts = c.hour + s * MINUTE;
        if (ts < from || ts >= to || !(v[s * 4 + 3]! > 0)) continue;
        push(c.series, [ts, v[s * 4]!, v[s * 4 + 1]!, v[s * 4 + 2]!]);
      }
    }
    const recent = await this.db.selectFrom('metric_1m_recent').select(['ts', 'layout_id', 'data']).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).orderBy('ts').execute();
    for (const r of recent) {
      const b = await this.unpackBucket(this.db, r.ts, r.layout_id, r.data);
      for (let i = 0; i < b.keys.length; i++) if (b.count[i]! > 0 && match(b.keys[i]!)) push(b.keys[i]!, [r.ts, b.avg[i]!, b.min[i]!, b.max[i]!]);
    }
    for (const a of out.values()) a.sort((x, y) => x[0] - y[0]);
    return out;
  }

  async read1h(hostId: string, from: number, to: number, match: (key: string) => boolean): Promise<Map<string, Point[]>> {
    const rows = await this.db.selectFrom('metric_1h').select(['ts', 'layout_id', 'data']).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).orderBy('ts').execute();
    const out = new Map<string, Point[]>();
    for (const r of rows) {
      const b = await this.unpackBucket(this.db, r.ts, r.layout_id, r.data);
      for (let i = 0; i < b.keys.length; i++) {
        if (!(b.count[i]! > 0) || !match(b.keys[i]!)) continue;
        let a = out.get(b.keys[i]!);
        if (!a) out.set(b.keys[i]!, (a = []));
        a.push([r.ts, b.avg[i]!, b.min[i]!, b.max[i]!]);
      }
    }
    return out;
  }

  // --- processes and inventory -----------------------------------------------------------------

  async insertTop(rows: { hostId: string; ts: number; data: unknown }[]): Promise<void> {
    if (!rows.length) return;
    await this.db
      .insertInto('process_top')
      .values(rows.map((r) => ({ host_id: r.hostId, ts: r.ts, data: JSON.stringify(r.data) })))
      .onConflict((oc) => oc.columns(['host_id', 'ts']).doUpdateSet({ data: (eb) => eb.ref('excluded.data') }))
      .execute();
  }

  async readTop(hostId: string, from: number, to: number): Promise<{ ts: number; data: unknown }[]> {
    const rows = await this.db.selectFrom('process_top').select(['ts', 'data']).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).orderBy('ts').limit(10_000).execute();
    return rows.map((r) => ({ ts: r.ts, data: JSON.parse(r.data) as unknown }));
  }

  async putInventory(hostId: string, ts: number, data: unknown): Promise<void> {
    const json = JSON.stringify(data);
    await this.db.insertInto('host_inventory').values({ host_id: hostId, ts, data: json }).onConflict((oc) => oc.column('host_id').doUpdateSet({ ts, data: json })).execute();
  }

  async getInventory(hostId: string): Promise<{ ts: number; data: unknown } | undefined> {
    const r = await this.db.selectFrom('host_inventory').select(['ts', 'data']).where('host_id', '=', hostId).executeTakeFirst();
    return r ? { ts: r.ts, data: JSON.parse(r.data) as unknown } : undefined;
  }

  // --- retention and size ----------------------------------------------------------------------

  async prune(cut: { raw: number; m1: number; h1: number; top: number }): Promise<Record<string, number>> {
    const del = async (t: keyof Tables, col: string, before: number) => Number((await this.db.deleteFrom(t).where(col as never, '<', before as never).executeTakeFirst()).numDeletedRows);
    return {
      raw: await del('metric_raw', 'ts', cut.raw),
      // Whole hours: an hour's minutes stay until all of it is past the cut, so a late minute of the
      // hour holding the cut still merges with the rest of its hour (see MetricsService.ingest).
      m1: (await del('metric_1m', 'hour', Math.floor(cut.m1 / HOUR) * HOUR)) + (await del('metric_1m_recent', 'ts', Math.floor(cut.m1 / HOUR) * HOUR)),
      h1: await del('metric_1h', 'ts', cut.h1),
      top: await del('process_top', 'ts', cut.top),
    };
  }

  async deleteHost(hostId: string): Promise<void> {
    this.recentLayouts.delete(hostId);
    for (const t of ['metric_raw', 'metric_1m_recent', 'metric_1m', 'metric_1h', 'process_top', 'host_inventory', 'metric_layouts'] as const) {
      await this.db.deleteFrom(t).where('host_id', '=', hostId).execute();
    }
  }

  /** Rows and payload bytes written for one host per tier in [from, to). */
  async usage(hostId: string, from: number, to: number): Promise<Record<'raw' | 'm1' | 'h1' | 'top', { rows: number; bytes: number }>> {
    const len = (col: string) => sql<number>`coalesce(sum(length(${sql.ref(col)})), 0)`;
    const count = sql<number>`count(*)`;
    const raw = await this.db.selectFrom('metric_raw').select([count.as('n'), len('data').as('b')]).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).executeTakeFirstOrThrow();
    const m1 = await this.db.selectFrom('metric_1m').select([count.as('n'), len('data').as('b')]).where('host_id', '=', hostId).where('hour', '>=', from).where('hour', '<', to).executeTakeFirstOrThrow();
    const m1r = await this.db.selectFrom('metric_1m_recent').select([count.as('n'), len('data').as('b')]).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).executeTakeFirstOrThrow();
    const h1 = await this.db.selectFrom('metric_1h').select([count.as('n'), len('data').as('b')]).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).executeTakeFirstOrThrow();
    const top = await this.db.selectFrom('process_top').select([count.as('n'), len('data').as('b')]).where('host_id', '=', hostId).where('ts', '>=', from).where('ts', '<', to).executeTakeFirstOrThrow();
    const N = (x: unknown) => Number(x);
    return {
      raw: { rows: N(raw.n), bytes: N(raw.b) },
      m1: { rows: N(m1.n) + N(m1r.n), bytes: N(m1.b) + N(m1r.b) },
      h1: { rows: N(h1.n), bytes: N(h1.b) },
      top: { rows: N(top.n), bytes: N(top.b) },
    };
  }
}
