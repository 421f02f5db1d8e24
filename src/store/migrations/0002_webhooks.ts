import { type Kysely, type Migration, sql } from 'kysely';

/** Webhook endpoints, the delivery queue with its attempt log, and per-account signing secrets. */
export function webhooks(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('webhook_endpoints')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text')
        .addColumn('account_ids', 'text')
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('secret_enc', 'text', (c) => c.notNull())
        .addColumn('failing_since', ms)
        .addColumn('disabled_reason', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_endpoints_org').on('webhook_endpoints').columns(['org_id', 'id']).execute();

      await db.schema
        .createTable('deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        // `whk_…` for an organization endpoint, `notify:acc_…` / `result:acc_…` for an account's own.
        .addColumn('destination', 'text', (c) => c.notNull())
        .addColumn('endpoint_id', 'text')
        // The event's account ('' for organization-wide events): deliveries are ordered per account.
        .addColumn('account_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_seq', ms, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', ms)
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', ms)
        .addColumn('response_status', 'integer')
        .addColumn('duration_ms', 'integer')
        .addColumn('error', 'text')
        // The body for messages that are not outbox events (test events); null: built from the event.
        .addColumn('payload', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
      await sql`create index deliveries_due on deliveries (next_attempt_at) where status in ('pending', 'failed')`.execute(
        db,
      );
      await sql`create index deliveries_line on deliveries (destination, account_key, event_seq) where status in ('pending', 'failed')`.execute(
        db,
      );
      await db.schema.createIndex('deliveries_endpoint').on('deliveries').columns(['endpoint_id', 'id']).execute();
      await db.schema.createIndex('deliveries_event').on('deliveries').columns(['event_id']).execute();

      await db.schema
        .createTable('delivery_attempts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('delivery_id', 'text', (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('response_status', 'integer')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('response_body', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('delivery_attempts_delivery')
        .on('delivery_attempts')
        .columns(['delivery_id', 'attempt'])
        .execute();

      await db.schema.alterTable('account_config').addColumn('signing_secret_enc', 'text').execute();
    },
  };
}
