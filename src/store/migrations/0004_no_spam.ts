import type { Kysely, Migration } from 'kysely';

/** Quiet hours, back-off of scheduled logins whose prompts go unanswered, and code resends. */
export function noSpam(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.alterTable('account_config').addColumn('quiet_hours', 'text').execute();
      await db.schema
        .alterTable('accounts')
        .addColumn('backoff_level', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('account_config').addColumn('resend_after_seconds', 'integer').execute();
      await db.schema
        .alterTable('account_config')
        .addColumn('max_resends', 'integer', (c) => c.notNull().defaultTo(2))
        .execute();
      await db.schema
        .alterTable('assistance_requests')
        .addColumn('resends', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  };
}
