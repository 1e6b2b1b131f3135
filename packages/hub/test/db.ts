/**
 * A migrated database for a test: SQLite in a temporary directory, or a fresh PostgreSQL schema.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DbHandle, type OpenOptions } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../src/server.js';

export const PG = process.env.TETHER_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Both engines unless TETHER_TEST_PG=off (never in CI). */
export const ENGINES = process.env.TETHER_TEST_PG === 'off' ? (['sqlite'] as const) : (['sqlite', 'postgres'] as const);

export async function testDb(engine: 'sqlite' | 'postgres', opts: OpenOptions = {}): Promise<{ h: DbHandle; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-db-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const h = await openDatabase(engine === 'sqlite' ? `sqlite:${join(dir, 't.db')}` : `${PG}?schema=${schema}`, dir, opts);
  await migrate(h.db, ALL_MIGRATIONS, h.schema);
  return {
    h,
    async cleanup() {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
      if (engine === 'postgres') {
        const c = new pg.Client({ connectionString: PG });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    },
  };
}
