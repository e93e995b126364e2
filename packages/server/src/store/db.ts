import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type MigrationProvider } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';
import { migrationsFor } from './migrations.ts';

export type Db = Kysely<Database>;

export interface StoreOptions {
  /** PostgreSQL URL; SQLite under `dataDir` when absent. */
  databaseUrl?: string | undefined;
  dataDir: string;
  /** PostgreSQL schema to use instead of `public` (tests isolate themselves this way). */
  postgresSchema?: string | undefined;
}

export interface Store {
  db: Db;
  dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

// PostgreSQL returns BIGINT as a string by default; every BIGINT here is a Unix time or a sequence number.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** Opens the database and runs pending migrations. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const store = options.databaseUrl === undefined ? openSqlite(options.dataDir) : openPostgres(options.databaseUrl, options.postgresSchema);
  await migrate(store);
  return store;
}

function openSqlite(dataDir: string): Store {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = new SqliteDatabase(join(dataDir, 'mandate.sqlite'));
  file.pragma('journal_mode = WAL');
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');

  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

function openPostgres(connectionString: string, schema: string | undefined): Store {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

async function migrate(store: Store): Promise<void> {
  const migrations = migrationsFor(store.dialect);
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };
  // Kysely looks for its migration tables in every schema unless it is given one, so a second
  // Mandate (or another Kysely app) in the same database would hide ours; name the current one.
  const migrationTableSchema = store.dialect === 'postgres' ? await currentSchema(store.db) : undefined;
  const migrator = new Migrator({ db: store.db, provider, ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }) });

  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Database migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
}

async function currentSchema(db: Db): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`SELECT current_schema() AS schema`.execute(db);
  const schema = rows[0]?.schema;
  if (schema === undefined || schema === null) throw new Error('PostgreSQL has no current schema: check the search_path of the database user.');
  return schema;
}
