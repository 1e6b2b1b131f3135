/**
 * One storage layer for SQLite (embedded, one machine) and PostgreSQL (shared by several hubs).
 * The rest of the hub sees only Kysely; dialect differences stay in this file:
 *  - times are integer milliseconds (PostgreSQL bigint, parsed to numbers here),
 *  - JSON is stored as text, booleans as 0/1 integers,
 *  - a PostgreSQL URL may carry `?schema=NAME` so several deployments (or test runs) share one database.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Dialect, type Driver } from 'kysely';
import { Worker } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { CheckpointReport, CheckpointerOptions } from './checkpointer.js';

// bigint (OID 20) columns hold millisecond times and counters: well inside 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type DbKind = 'sqlite' | 'postgres';

export interface DbHandle<DB = any> {
  kind: DbKind;
  db: Kysely<DB>;
  /** Human-readable location with no password in it, for logs. */
  describe: string;
  /** PostgreSQL schema holding Tether's tables (public unless the URL says otherwise). */
  schema?: string;
  /** The SQLite connection under `db`, for the few hot writes that use prepared statements directly. */
  sqlite?: SQLite.Database;
  /** SQLite file databases: the background checkpointer's figures (see checkpointer.ts). */
  wal?: WalStats;
  close(): Promise<void>;
}

export interface WalStats {
  /** checkpoints run by the worker, those that reset the log, the last one's duration */
  passes: number;
  restarts: number;
  lastMs: number;
  errors: number;
  lastError?: string;
  /** false once the worker has failed: the hub's own connection checkpoints again */
  background: boolean;
}

export interface OpenOptions {
  /** checkpointer pass interval and log size (pages) at which it resets the log; for tests */
  checkpointIntervalMs?: number;
  checkpointRestartFrames?: number;
  /**
   * How long a query may wait for a connection before it fails with `DbBusyError` (default 30 s).
   * SQLite has one connection, so a query waiting longer is almost always one that escaped its
   * transaction and waits for the connection that transaction holds: without a bound it waits for
   * ever and takes the hub with it. Tests set it short so that such an escape fails fast.
   */
  acquireTimeoutMs?: number;
  /** PostgreSQL connections in the pool (default 10); tests use 1, as SQLite has */
  poolSize?: number;
}

/** A query that could not get a database connection in time. */
export class DbBusyError extends Error {
  readonly code = 'DB_BUSY';
}

/** Default bound on waiting for a connection (see OpenOptions.acquireTimeoutMs). */
export const ACQUIRE_TIMEOUT_MS = 30_000;

/**
 * Wraps a dialect so that acquiring a connection fails after `timeoutMs` instead of waiting for
 * ever. A connection that arrives after its waiter gave up is handed straight back.
 */
function boundedAcquire(dialect: Dialect, timeoutMs: number, what: string): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver(): Driver {
      const inner = dialect.createDriver();
      const driver: Driver = {
        init: () => inner.init(),
        async acquireConnection() {
          const pending = inner.acquireConnection();
          let timer: NodeJS.Timeout | undefined;
          let gaveUp = false;
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              gaveUp = true;
              reject(new DbBusyError(`no ${what} connection free after ${timeoutMs} ms (a query waiting on a connection that its own transaction holds, or a stalled database)`));
            }, timeoutMs);
          });
          try {
            return await Promise.race([pending, timeout]);
          } catch (err) {
            if (gaveUp) void pending.then((c) => inner.releaseConnection(c)).catch(() => {});
            throw err;
          } finally {
            clearTimeout(timer);
          }
        },
        beginTransaction: (c, s) => inner.beginTransaction(c, s),
        commitTransaction: (c) => inner.commitTransaction(c),
        rollbackTransaction: (c) => inner.rollbackTransaction(c),
        releaseConnection: (c) => inner.releaseConnection(c),
        destroy: () => inner.destroy(),
      };
      if (inner.savepoint) driver.savepoint = inner.savepoint.bind(inner);
      if (inner.rollbackToSavepoint) driver.rollbackToSavepoint = inner.rollbackToSavepoint.bind(inner);
      if (inner.releaseSavepoint) driver.releaseSavepoint = inner.releaseSavepoint.bind(inner);
      return driver;
    },
  };
}

/**
 * Moves the WAL checkpoints of `sqlite` (a file database) to a worker thread with a connection of
 * its own. If the worker cannot run, the connection's own automatic checkpoints are turned back on.
 */
function backgroundCheckpoints(sqlite: SQLite.Database, path: string, o: OpenOptions): { stats: WalStats; stop: () => Promise<void> } {
  const stats: WalStats = { passes: 0, restarts: 0, lastMs: 0, errors: 0, background: true };
  let stopping = false;
  const opts: CheckpointerOptions = { path, intervalMs: o.checkpointIntervalMs ?? 1000, restartFrames: o.checkpointRestartFrames ?? 16_384 };
  sqlite.pragma('wal_autocheckpoint = 0');
  const fallBack = (why: string) => {
    if (!stats.background || stopping) return;
    stats.background = false;
    stats.lastError = why;
    if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
  };
  const worker = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { tetherCheckpointer: opts } });
  worker.on('message', (m: CheckpointReport | { error: string }) => {
    if ('error' in m) {
      stats.errors++;
      stats.lastError = m.error;
      return;
    }
    stats.passes++;
    if (m.restarted) stats.restarts++;
    stats.lastMs = m.ms;
  });
  let exited = false;
  const exit = new Promise<void>((res) => worker.once('exit', () => ((exited = true), res())));
  worker.on('error', (err) => fallBack(err.message));
  void exit.then(() => fallBack('checkpointer exited'));
  // After the listeners: adding a 'message' listener refs the worker's port again.
  worker.unref();
  return {
    stats,
    stop: async () => {
      stopping = true;
      if (exited) return;
      worker.postMessage('stop');
      const t = setTimeout(() => void worker.terminate(), 5000);
      await exit;
      clearTimeout(t);
    },
  };
}

export class DbUrlError extends Error {}

export interface ParsedDbUrl {
  kind: DbKind;
  path?: string;
  pg?: { connectionString: string; schema?: string };
  describe: string;
}

export function parseDbUrl(url: string, baseDir: string): ParsedDbUrl {
  if (url.startsWith('sqlite:')) {
    const p = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (p === '') throw new DbUrlError('sqlite: URL needs a path, e.g. sqlite:data/tether.db');
    const path = p === ':memory:' ? p : resolve(baseDir, p);
    return { kind: 'sqlite', path, describe: `sqlite:${path}` };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new DbUrlError('postgres URL could not be parsed');
    }
    const schema = u.searchParams.get('schema') ?? undefined;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new DbUrlError('schema must match [a-z_][a-z0-9_]*');
    u.searchParams.delete('schema');
    const safe = new URL(u.toString());
    if (safe.password) safe.password = '***';
    return {
      kind: 'postgres',
      pg: { connectionString: u.toString(), ...(schema ? { schema } : {}) },
      describe: safe.toString() + (schema ? ` (schema ${schema})` : ''),
    };
  }
  throw new DbUrlError(`unsupported database URL (expected sqlite:PATH or postgres://…): ${url.split(':')[0]}:…`);
}

/** How many distinct SQL texts keep their prepared statement (hot paths repeat a few hundred). */
const STATEMENT_CACHE = 512;

/**
 * Kysely's SQLite driver prepares every query anew; preparing was about 4 % of the hub's CPU under
 * a 10,000-agent ingest. This keeps the most recently used statements by their SQL text. Kysely runs
 * one query at a time on its one connection (a mutex), so a cached statement is never busy when
 * it is taken again.
 */
function cachedStatements(sqlite: SQLite.Database): { prepare(sql: string): SQLite.Statement; close(): void } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(text: string) {
      let st = cache.get(text);
      if (st) {
        cache.delete(text);
        cache.set(text, st);
        return st;
      }
      st = sqlite.prepare(text);
      cache.set(text, st);
      if (cache.size > STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      return st;
    },
    close: () => sqlite.close(),
  };
}

export async function openDatabase<DB = any>(url: string, baseDir = process.cwd(), opts: OpenOptions = {}): Promise<DbHandle<DB>> {
  const parsed = parseDbUrl(url, baseDir);
  let dialect: Dialect;
  let closeExtra: () => Promise<void> = async () => {};
  let native: SQLite.Database | undefined;
  let wal: WalStats | undefined;
  if (parsed.kind === 'sqlite') {
    if (parsed.path !== ':memory:') mkdirSync(dirname(parsed.path!), { recursive: true, mode: 0o700 });
    const sqlite = new SQLite(parsed.path!);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    if (parsed.path !== ':memory:') {
      const bg = backgroundCheckpoints(sqlite, parsed.path!, opts);
      wal = bg.stats;
      closeExtra = bg.stop;
    }
    native = sqlite;
    dialect = new SqliteDialect({ database: cachedStatements(sqlite) });
  } else {
    const { connectionString, schema } = parsed.pg!;
    if (schema) {
      // Create the schema before the pool pins search_path to it.
      const c = new pg.Client({ connectionString });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      } finally {
        await c.end();
      }
    }
    const pool = new pg.Pool({
      connectionString,
      max: opts.poolSize ?? 10,
      // Longer than the acquire bound, so that a busy pool fails with DbBusyError; this one is for a connect that hangs.
      connectionTimeoutMillis: (opts.acquireTimeoutMs ?? ACQUIRE_TIMEOUT_MS) + 1000,
      ...(schema ? { options: `-c search_path="${schema}"` } : {}),
    });
    pool.on('error', () => {
      /* an idle client lost its connection; the pool replaces it */
    });
    dialect = new PostgresDialect({ pool });
  }
  const db = new Kysely<DB>({ dialect: boundedAcquire(dialect, opts.acquireTimeoutMs ?? ACQUIRE_TIMEOUT_MS, parsed.kind) });
  // Fail fast with a clear message when the database cannot be reached.
  await sql`select 1`.execute(db);
  return {
    kind: parsed.kind,
    db,
    describe: parsed.describe,
    ...(parsed.kind === 'postgres' ? { schema: parsed.pg!.schema ?? 'public' } : {}),
    ...(native ? { sqlite: native } : {}),
    ...(wal ? { wal } : {}),
    close: async () => {
      await db.destroy();
      await closeExtra();
    },
  };
}
