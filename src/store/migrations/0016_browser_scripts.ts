import { type Kysely, type Migration, sql } from 'kysely';

/** Browser-script connectors: versioned bank scripts, per-account pins, and browser runs with failure evidence. */
export function browserScripts(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('bank_scripts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('bank_id', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('credential_fields', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('bank_scripts_version', ['bank_id', 'version'])
        .execute();
      // One active script per bank, enforced by the store itself.
      await db.schema
        .createIndex('bank_scripts_one_active')
        .on('bank_scripts')
        .column('bank_id')
        .unique()
        .where(sql.ref('state'), '=', 'active')
        .execute();
      await db.schema
        .createTable('bank_script_pins')
        .addColumn('account_id', 'text', (c) => c.primaryKey())
        .addColumn('bank_id', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('browser_runs')
        .addColumn('session_id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('bank_id', 'text', (c) => c.notNull())
        .addColumn('script_version', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('failed_at', 'bigint')
        .addColumn('error', 'text')
        .addColumn('url', 'text')
        .addColumn('html', 'text')
        .addColumn('screenshot', 'text')
        .addColumn('console_errors', 'text')
        .execute();
      await db.schema.createIndex('browser_runs_failed').on('browser_runs').column('failed_at').execute();
    },
  };
}
