import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  type DatabaseIntrospector,
  DummyDriver,
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type SqliteStatement,
  sql,
} from 'kysely';
import pg from 'pg';
import { init } from './migrations/0001_init.js';
import { webhooks } from './migrations/0002_webhooks.js';
import { userSessions } from './migrations/0003_user_sessions.js';
import { noSpam } from './migrations/0004_no_spam.js';
import { relays } from './migrations/0005_relays.js';
import { userTwoFactor } from './migrations/0006_user_2fa.js';
import { integrator } from './migrations/0007_integrator.js';
import { reauth } from './migrations/0008_reauth.js';
import { codeSubmissions } from './migrations/0009_code_submissions.js';
import { reconciliation } from './migrations/0010_reconciliation.js';
import { retention } from './migrations/0012_retention.js';
import { rateLimits } from './migrations/0013_rate_limits.js';
import { connectorSessions } from './migrations/0014_connector_sessions.js';
import { browserScripts } from './migrations/0016_browser_scripts.js';
import { loginSpacing } from './migrations/0017_login_spacing.js';
import { compactEvents } from './migrations/0018_compact_events.js';
import { admitPool } from './pg-admission.js';
import type { Database, Dialect } from './schema.js';

// Re-exported for the callers that know the store by its connection.
export type { Dialect } from './schema.js';

export type Db = Kysely<Database>;

const dummies: Record<Dialect, Kysely<Database>> = {
  sqlite: new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  }),
  postgres: new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  }),
};

/** A Kysely instance of `dialect` that only builds and compiles queries (never connected). */
export function dummyFor(dialect: Dialect): Kysely<Database> {
  return dummies[dialect];
}

/** The dialect a connected Kysely instance speaks. */
export function dialectOf(db: Kysely<Database>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

export interface Store {
  db: Db;
  /**
   * For lease heartbeats and code hand-offs only: on PostgreSQL a connection of its own (opened on
   * first use), so a pool busy with a burst of work cannot hold renewals back until leases expire,
   * nor a woken login's code. SQLite: `db`.
   */
  control: Db;
  dialect: Dialect;
  /**
   * Queries waiting in this process for a database connection beyond the pool (PostgreSQL; SQLite
   * has none to wait for): the engine claims nothing while there are more than the pool holds.
   */
  backlog?(): number;
  /** PostgreSQL only: the connection settings and schema (for LISTEN and advisory-lock connections). */
  postgres: PostgresInfo | null;
  close(): Promise<void>;
}

export interface PostgresInfo {
  /** Settings for a dedicated `pg.Client` (same server, user and schema as the pool). */
  clientConfig: pg.ClientConfig;
  /** The schema the store lives in (`current_schema()`), which names its channel and lock keys. */
  schema: string;
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
    '0009_code_submissions': codeSubmissions(),
    '0010_reconciliation': reconciliation(),
    '0012_retention': retention(),
    '0013_rate_limits': rateLimits(),
    '0014_connector_sessions': connectorSessions(),
    '0016_browser_scripts': browserScripts(),
    '0017_login_spacing': loginSpacing(),
    '0018_compact_events': compactEvents(),
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
 * The store's folder and files readable by their owner only, whatever the umask: folders created
 * here 0700 (an existing folder is the operator's), the database file 0600. SQLite creates its
 * `-wal` and `-shm` files with the database file's mode, and the existing ones are set here too.
 */
function restrictSqliteFiles(file: string): void {
  const created = mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by the umask; set it again on each folder this call made.
  if (created) {
    for (let dir = dirname(file); dir.length >= created.length; dir = dirname(dir)) chmodSync(dir, 0o700);
  }
  const existed = existsSync(file);
  const fd = openSync(file, 'a', 0o600);
  try {
    fchmodSync(fd, 0o600);
  } catch (error) {
    // A file of another owner that we may write to: its mode is that owner's to set.
    if (!existed) throw error;
  } finally {
    closeSync(fd);
  }
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(file + suffix, 0o600);
    } catch {
      // absent (SQLite creates it with the database file's mode), or another owner's
    }
  }
}

/**
 * Opens the embedded SQLite store at `file` (created with its folder when missing) in WAL mode.
 */
export function openSqliteStore(file: string): Store {
  if (file !== ':memory:') restrictSqliteFiles(file);
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
    control: db,
    dialect: 'sqlite',
    postgres: null,
    async close() {
      await db.destroy();
    },
  };
}

/** PostgreSQL pool settings [OTPILOT_PG_POOL_SIZE]. */
export interface PostgresStoreOptions {
  /** Connections in this process's pool [10]. */
  poolSize?: number;
  /**
   * How long opening or handing out a connection may take before the query fails (the API answers 503),
   * ms [30000]. Time queued behind busy connections in this process is not counted.
   */
  connectTimeoutMs?: number;
}

// int8 (counts, bigint epoch-ms times, bigserial) and numeric (sums) as JS numbers: every value we
// store fits in 2^53 (times are milliseconds, money is kept as decimal text).
const NUMBER_TYPES = new Set<number>([pg.types.builtins.INT8, pg.types.builtins.NUMERIC]);
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (NUMBER_TYPES.has(oid) && format !== 'binary') return (value: string) => Number(value);
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** `url` with its search_path set to `schema`: a store opened with it lives in that schema only. */
export function urlWithSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}

/**
 * Kysely's PostgreSQL introspector reads every schema of the database and resolves schema names with
 * functions that see the latest catalog: a schema dropped meanwhile by someone else fails the
 * migration with "schema … does not exist". The migrator only asks which tables exist; this answers
 * for the store's own schema, from the catalog alone.
 */
// biome-ignore lint/suspicious/noExplicitAny: Kysely's introspector receives an untyped instance
function ownSchemaIntrospector(db: Kysely<any>): DatabaseIntrospector {
  const getTables = async () => {
    const { rows } = await sql<{ schema: string; name: string; kind: string }>`
      select n.nspname as schema, c.relname as name, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'p', 'v', 'm')
    `.execute(db);
    return rows.map((row) => ({
      schema: row.schema,
      name: row.name,
      isView: row.kind === 'v' || row.kind === 'm',
      columns: [],
    }));
  };
  return {
    async getSchemas() {
      const { rows } = await sql<{ name: string }>`select current_schema() as name`.execute(db);
      return rows.filter((row) => row.name !== null);
    },
    getTables,
    async getMetadata() {
      return { tables: await getTables() };
    },
  };
}

/** The PostgreSQL dialect with the introspector above. */
class OwnSchemaPostgresDialect extends PostgresDialect {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return ownSchemaIntrospector(db);
  }
}

/**
 * Opens a PostgreSQL store from a `postgres://` URL. A `?options=-c search_path=NAME` in the URL puts
 * the store in schema NAME (tests give each server its own schema this way).
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const clientConfig: pg.ClientConfig = {
    connectionString: url,
    types: pgTypes,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 30_000,
    application_name: 'otpilot',
  };
  const max = options.poolSize ?? 10;
  const pool = new pg.Pool({ ...clientConfig, max, idleTimeoutMillis: 30_000 });
  // A dropped idle connection is replaced on next use; without a listener it would crash the process.
  pool.on('error', () => {});
  // The pool listens for errors only on idle connections. One that breaks while checked out between
  // two statements (inside a transaction) would emit an unheard 'error' and end the process; its next
  // query fails anyway, and that failure is what callers see (503 at the HTTP edge).
  pool.on('connect', (client) => client.on('error', () => {}));
  // Queries beyond the pool wait in our own queue, not on pg-pool's connect timer (see pg-admission.ts).
  const admitted = admitPool(pool, max);
  const db = new Kysely<Database>({ dialect: new OwnSchemaPostgresDialect({ pool: admitted }) });
  const controlPool = new pg.Pool({ ...clientConfig, max: 1, idleTimeoutMillis: 0 });
  controlPool.on('error', () => {});
  controlPool.on('connect', (client) => client.on('error', () => {}));
  const control = new Kysely<Database>({ dialect: new PostgresDialect({ pool: controlPool }) });
  const destroy = () => Promise.all([db.destroy(), control.destroy()]);
  try {
    const { rows } = await pool.query<{ schema: string | null }>('select current_schema() as schema');
    const schema = rows[0]?.schema;
    if (!schema) throw new Error('the search_path names no existing schema: create it first');
    return {
      db,
      control,
      dialect: 'postgres',
      backlog: admitted.backlog,
      postgres: { clientConfig, schema },
      async close() {
        await destroy();
      },
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** Brings the schema up to date; safe to run on every start and from `otpilot migrate`. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(store.dialect) };
  // Named explicitly: Kysely looks for its migration table in any schema unless told which one.
  const migrator = new Migrator({
    db: store.db,
    provider,
    ...(store.postgres ? { migrationTableSchema: store.postgres.schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
