import { type Kysely, type Migration, sql } from 'kysely';

/**
 * Automation (issue 6): SMS relays and the SMS held for a request that is not open yet, the
 * per-account SMS hints and the fail-fast choice, and when the account's bank trust expires.
 */
export function relays(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('relays')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('auth_token_enc', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('relays_org').on('relays').columns(['org_id', 'id']).execute();

      await db.schema
        .createTable('held_sms')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('to_phone', 'text', (c) => c.notNull())
        .addColumn('relay_id', 'text')
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('account_ids', 'text')
        .addColumn('message_enc', 'text', (c) => c.notNull())
        .addColumn('received_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('held_sms_phone').on('held_sms').columns(['org_id', 'to_phone']).execute();
      await db.schema.createIndex('held_sms_expiry').on('held_sms').column('expires_at').execute();

      await db.schema.alterTable('account_config').addColumn('sms_sender', 'text').execute();
      await db.schema.alterTable('account_config').addColumn('sms_code_pattern', 'text').execute();
      await db.schema
        .alterTable('account_config')
        .addColumn('on_no_code_source', 'text', (c) => c.notNull().defaultTo('wait'))
        .execute();
      // Routing looks accounts up by organization and number.
      await db.schema
        .createIndex('account_config_org_phone')
        .on('account_config')
        .columns(['org_id', 'otp_phone'])
        .execute();

      await db.schema.alterTable('accounts').addColumn('trust_expires_at', ms).execute();
      await db.schema.alterTable('accounts').addColumn('trust_warned_at', ms).execute();
      await sql`create index accounts_trust_expiry on accounts (trust_expires_at) where trust_warned_at is null`.execute(
        db,
      );
    },
  };
}
