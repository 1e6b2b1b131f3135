import { Migrator, type Kysely, type Migration } from 'kysely';

/**
 * Each hub module owns its tables and contributes migrations named `NNNN_module_what`.
 * They are applied in name order, so numbers are global across modules.
 */
export type ModuleMigrations = Record<string, Migration>;

/**
 * `schema` pins Kysely's own bookkeeping tables: its existence check looks across all schemas,
 * so without it a second deployment in the same PostgreSQL database would find the first one's.
 */
export async function migrate(db: Kysely<any>, sets: ModuleMigrations[], schema?: string): Promise<string[]> {
  const all: Record<string, Migration> = {};
  for (const set of sets) {
    for (const [name, m] of Object.entries(set)) {
      if (all[name]) throw new Error(`duplicate migration name ${name}`);
      all[name] = m;
    }
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => all }, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
