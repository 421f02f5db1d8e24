import type { Kysely, Migration } from 'kysely';

/**
 * Persistent bank sessions and device trust (issue 13): who holds an account's open bank session and
 * since when (its holder renews `live_session_until` like a lease, so a dead worker's claim lapses),
 * the keepAlive interval per account, and when a bank still asked for a code despite stored trust.
 */
export function connectorSessions(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.alterTable('accounts').addColumn('live_session_owner', 'text').execute();
      await db.schema.alterTable('accounts').addColumn('live_session_since', 'bigint').execute();
      await db.schema.alterTable('accounts').addColumn('live_session_until', 'bigint').execute();
      await db.schema.alterTable('accounts').addColumn('trust_challenged_at', 'bigint').execute();
      await db.schema
        .alterTable('account_config')
        .addColumn('keep_alive_seconds', 'integer', (c) => c.notNull().defaultTo(300))
        .execute();
    },
  };
}
