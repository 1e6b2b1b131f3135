import { sql, type Kysely, type RawBuilder } from 'kysely';

export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter.constructor.name === 'PostgresAdapter';
}

/** Binary column type: bytea on PostgreSQL, blob on SQLite. */
export function blobType(db: Kysely<any>): RawBuilder<unknown> {
  return sql.raw(isPostgres(db) ? 'bytea' : 'blob');
}
