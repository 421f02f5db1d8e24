import type { Kysely, Migration } from 'kysely';

/** Quiet hours per account, and the back-off level of scheduled logins whose prompts go unanswered. */
export function noSpam(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.alterTable('account_config').addColumn('quiet_hours', 'text').execute();
      await db.schema
        .alterTable('accounts')
        .addColumn('backoff_level', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  };
}
