import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  DummyDriver,
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type SqliteStatement,
} from 'kysely';
import { init } from './migrations/0001_init.js';
import { webhooks } from './migrations/0002_webhooks.js';
import { userSessions } from './migrations/0003_user_sessions.js';
import { noSpam } from './migrations/0004_no_spam.js';
import { relays } from './migrations/0005_relays.js';
import { userTwoFactor } from './migrations/0006_user_2fa.js';
import { integrator } from './migrations/0007_integrator.js';
import { reauth } from './migrations/0008_reauth.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export type Db = Kysely<Database>;

/**
 * A Kysely instance that only builds and compiles queries (never connected), for queries compiled
 * once at load time. SQLite's and PostgreSQL's compilers differ in placeholders only; the PostgreSQL
 * issue gives this a dialect switch.
 */
export const dummy = new Kysely<Database>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

export interface Store {
  db: Db;
  dialect: Dialect;
  close(): Promise<void>;
}

/** Every migration, in order. A new migration is a new entry; never edit a landed one. */
function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_init': init(dialect),
    '0002_webhooks': webhooks(),
    '0003_user_sessions': userSessions(),
    '0004_no_spam': noSpam(),
    '0005_relays': relays(),
    '0006_user_2fa': userTwoFactor(),
    '0007_integrator': integrator(),
    '0008_reauth': reauth(),
  };
}

/** Prepared statements kept per connection; the hot paths use a few dozen distinct SQL texts. */
const STATEMENT_CACHE = 500;

/**
 * Kysely prepares every query anew; preparing costs more than running most of ours. This keeps the
 * prepared statements by SQL text (least recently used out first). Safe: better-sqlite3 is synchronous,
 * so a statement is never in use twice at once.
 */
function withStatementCache(database: SQLite.Database, size = STATEMENT_CACHE): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = database.prepare(sql) as unknown as SqliteStatement;
        if (cache.size >= size) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

/**
 * Opens the embedded SQLite store at `file` (created with its folder when missing) in WAL mode.
 * PostgreSQL arrives with the scale-out issue behind the same `Store` shape.
 */
export function openSqliteStore(file: string): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable across application crashes in WAL mode; only an OS crash may lose the last commits.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // 64 MiB of page cache and in-memory temp tables: index updates of bulk inserts stay in memory.
  sqlite.pragma('cache_size = -65536');
  sqlite.pragma('temp_store = MEMORY');
  // Checkpoint every ~40 MiB of WAL instead of 4 MiB: far fewer checkpoint stalls inside commits.
  sqlite.pragma('wal_autocheckpoint = 10000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return {
    db,
    dialect: 'sqlite',
    async close() {
      await db.destroy();
    },
  };
}

/** Brings the schema up to date; safe to run on every start and from `otpilot migrate`. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(store.dialect) };
  const migrator = new Migrator({ db: store.db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
