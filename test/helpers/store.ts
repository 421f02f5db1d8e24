import { createHash } from 'node:crypto';
import pg from 'pg';
import { urlWithSchema } from '../../src/store/db.js';

export { urlWithSchema };

/**
 * Which store this test run uses: vitest's `postgres` project sets OTPILOT_TEST_STORE=postgres (see
 * vitest.config.ts), the `sqlite` project leaves it unset.
 */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.OTPILOT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

/** The PostgreSQL server tests use (each server under test gets its own schema in it). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (!url) throw new Error('the postgres test project needs TEST_DATABASE_URL or DATABASE_URL');
  return url;
}

/** A fixed master key: PostgreSQL mode has no key file, and a reopened store must get the same key. */
const TEST_MASTER_KEY = 'a'.repeat(64);

/**
 * The schema of the store that lives in `dataDir` (one per test server, so test files stay parallel):
 * a hash of the whole path, since search_path folds case and temp folder names differ by case.
 */
export function schemaFor(dataDir: string): string {
  return `t_${createHash('sha256').update(dataDir).digest('hex').slice(0, 24)}`;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The environment that points a server (in this process or a child) at the test store of `dataDir`:
 * nothing for SQLite (the data folder holds it); for PostgreSQL a fresh schema, created here.
 */
export async function storeEnv(dataDir: string): Promise<Record<string, string>> {
  if (TEST_STORE === 'sqlite') return {};
  const schema = schemaFor(dataDir);
  await admin((client) => client.query(`create schema if not exists "${schema}"`));
  return { DATABASE_URL: urlWithSchema(testDatabaseUrl(), schema), OTPILOT_MASTER_KEY: TEST_MASTER_KEY };
}

/** Drops the PostgreSQL schema of `dataDir` (no-op on SQLite, where removing the folder is enough). */
export async function dropStore(dataDir: string): Promise<void> {
  if (TEST_STORE === 'sqlite') return;
  await admin((client) => client.query(`drop schema if exists "${schemaFor(dataDir)}" cascade`));
}
