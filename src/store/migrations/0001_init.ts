import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../schema.js';

/** The core schema: one definition for SQLite and PostgreSQL. */
export function init(dialect: Dialect): Migration {
  return {
    // Migrations see the schema as it was then, not today's typed Database.
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('organizations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text')
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('prefix', 'text', (c) => c.notNull().unique())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('account_ids', 'text')
        .addColumn('created_by', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('last_used_at', ms)
        .addColumn('revoked_at', ms)
        .execute();
      await db.schema.createIndex('api_keys_org').on('api_keys').columns(['org_id', 'id']).execute();

      await db.schema
        .createTable('banks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('connector', 'text', (c) => c.notNull())
        .addColumn('country', 'text')
        .addColumn('script_version', 'text', (c) => c.notNull())
        .addColumn('credential_fields', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('bank_id', 'text', (c) => c.notNull().references('banks.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('credentials_enc', 'text')
        .addColumn('trust_enc', 'text')
        .addColumn('identity', 'text')
        .addColumn('blocked_at', ms)
        .addColumn('blocked_reason', 'text')
        .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_success_at', ms)
        .addColumn('last_run_at', ms)
        .addColumn('next_run_at', ms)
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('accounts_org').on('accounts').columns(['org_id', 'id']).execute();
      // The scheduler's query: due, unblocked accounts.
      await sql`create index accounts_due on accounts (next_run_at) where blocked_at is null and next_run_at is not null`.execute(
        db,
      );

      await db.schema
        .createTable('account_config')
        .addColumn('account_id', 'text', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('session_type', 'text', (c) => c.notNull())
        .addColumn('login_mode', 'text', (c) => c.notNull())
        .addColumn('schedule', 'text')
        .addColumn('assist_timeout_seconds', 'integer', (c) => c.notNull())
        .addColumn('fatal_threshold', 'integer', (c) => c.notNull())
        .addColumn('otp_phone', 'text')
        .addColumn('totp_secret_enc', 'text')
        .addColumn('notification_endpoint_url', 'text')
        .addColumn('notification_auth_type', 'text')
        .addColumn('notification_auth_token_enc', 'text')
        .addColumn('notification_events', 'text')
        .addColumn('webhook_url', 'text')
        .addColumn('webhook_auth_type', 'text')
        .addColumn('webhook_auth_token_enc', 'text')
        .addColumn('webhook_extra_fields', 'text')
        .addColumn('silent_ingestion', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('account_config_phone').on('account_config').column('otp_phone').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('failure_category', 'text')
        .addColumn('failure_message', 'text')
        .addColumn('stages', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', ms)
        .addColumn('cancel_requested_at', ms)
        .addColumn('movements_new', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('queued_at', ms, (c) => c.notNull())
        .addColumn('started_at', ms)
        .addColumn('finished_at', ms)
        .execute();
      await db.schema.createIndex('sessions_account').on('sessions').columns(['account_id', 'id']).execute();
      // One active session per account, enforced by the database.
      await sql`create unique index sessions_one_active on sessions (account_id) where state in ('queued', 'running', 'awaiting_assistance')`.execute(
        db,
      );
      await sql`create index sessions_queued on sessions (queued_at) where state = 'queued'`.execute(db);
      await sql`create index sessions_leased on sessions (lease_expires_at) where lease_owner is not null`.execute(db);

      await db.schema
        .createTable('assistance_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('descriptor', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('code_enc', 'text')
        .addColumn('code_submitted_at', ms)
        .addColumn('code_via', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .addColumn('resolved_at', ms)
        .addColumn('resolution_via', 'text')
        .addColumn('resolution_reason', 'text')
        .execute();
      // At most one pending request per account, enforced by the database.
      await sql`create unique index assistance_one_pending on assistance_requests (account_id) where state = 'pending'`.execute(
        db,
      );
      await db.schema
        .createIndex('assistance_org')
        .on('assistance_requests')
        .columns(['org_id', 'state', 'id'])
        .execute();
      await db.schema
        .createIndex('assistance_account')
        .on('assistance_requests')
        .columns(['account_id', 'id'])
        .execute();
      // Closing a session's open request when the session ends.
      await db.schema.createIndex('assistance_session').on('assistance_requests').column('session_id').execute();

      await db.schema
        .createTable('bank_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
        .addColumn('external_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('iban', 'text')
        .addColumn('number', 'text')
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('balance_current', 'text')
        .addColumn('balance_available', 'text')
        .addColumn('balance_as_of', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .addUniqueConstraint('bank_accounts_external', ['account_id', 'external_id'])
        .execute();

      await db.schema
        .createTable('movements')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
        .addColumn('bank_account_id', 'text', (c) => c.notNull())
        .addColumn('dedup_key', 'text', (c) => c.notNull())
        .addColumn('external_id', 'text')
        .addColumn('booked_at', 'text', (c) => c.notNull())
        .addColumn('amount', 'text', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('reference', 'text')
        .addColumn('session_id', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addUniqueConstraint('movements_dedup', ['account_id', 'dedup_key'])
        .execute();
      // Listing: an account's movements, newest booking first.
      await db.schema
        .createIndex('movements_account')
        .on('movements')
        .columns(['account_id', 'booked_at', 'id'])
        .execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text')
        .addColumn('target_id', 'text')
        .addColumn('outcome', 'text')
        .addColumn('details', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_org').on('audit_log').columns(['org_id', 'id']).execute();

      await db.schema
        .createTable('events')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('occurred_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_org').on('events').columns(['org_id', 'seq']).execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
