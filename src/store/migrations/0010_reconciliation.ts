import type { Kysely, Migration } from 'kysely';

/**
 * Reconciliation (issue 18): expected payments, the movements that may settle them, the queue of
 * incoming movements still to look at, and the per-organization and per-account settings.
 */
export function reconciliation(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('expected_payments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        // null: any account of the organization may receive it.
        .addColumn('account_id', 'text')
        .addColumn('external_id', 'text', (c) => c.notNull())
        // Canonical decimal string with the currency's digits, and the same in minor units for matching.
        .addColumn('amount', 'text', (c) => c.notNull())
        .addColumn('amount_minor', ms, (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('payer_name', 'text', (c) => c.notNull())
        .addColumn('reference', 'text')
        .addColumn('expected_date', 'text')
        .addColumn('expires_at', ms, (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        // 'api' or 'pull' (pull-mode payments vanish with their source's list).
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('movement_id', 'text')
        .addColumn('score', 'real')
        .addColumn('reasons', 'text')
        .addColumn('matched_at', ms)
        .addColumn('matched_by', 'text')
        .addColumn('cancel_reason', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .addUniqueConstraint('expected_payments_external', ['org_id', 'external_id'])
        .execute();
      // One movement settles at most one payment (NULLs are distinct in both stores).
      await db.schema
        .createIndex('expected_payments_movement')
        .unique()
        .on('expected_payments')
        .column('movement_id')
        .execute();
      // An incoming movement looks for open payments of its amount.
      await db.schema
        .createIndex('expected_payments_open')
        .on('expected_payments')
        .columns(['org_id', 'state', 'currency', 'amount_minor'])
        .execute();
      await db.schema
        .createIndex('expected_payments_expiry')
        .on('expected_payments')
        .columns(['state', 'expires_at'])
        .execute();
      await db.schema
        .createIndex('expected_payments_account')
        .on('expected_payments')
        .columns(['account_id', 'state'])
        .execute();

      // The equally good movements of an ambiguous payment, until a human picks one.
      await db.schema
        .createTable('payment_candidates')
        .addColumn('payment_id', 'text', (c) => c.notNull())
        .addColumn('movement_id', 'text', (c) => c.notNull())
        .addColumn('score', 'real', (c) => c.notNull())
        .addColumn('reasons', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('payment_candidates_pk', ['payment_id', 'movement_id'])
        .execute();
      await db.schema
        .createIndex('payment_candidates_movement')
        .on('payment_candidates')
        .column('movement_id')
        .execute();

      // Incoming movements written by a scrape, matched after its commit (the login's transaction stays cheap).
      await db.schema
        .createTable('reconcile_inbox')
        .addColumn('movement_id', 'text', (c) => c.primaryKey())
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('reconcile_inbox_order').on('reconcile_inbox').column('created_at').execute();

      await db.schema
        .createTable('reconcile_org_settings')
        .addColumn('org_id', 'text', (c) => c.primaryKey().references('organizations.id'))
        .addColumn('window_days_before', 'integer', (c) => c.notNull())
        // null: any time after registration.
        .addColumn('window_days_after', 'integer')
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('reconcile_accounts')
        .addColumn('account_id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        // 'match' or 'passthrough'.
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('source_url', 'text')
        .addColumn('poll_seconds', 'integer', (c) => c.notNull())
        .addColumn('polled_at', ms)
        .addColumn('poll_error', 'text')
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
    },
  };
}
