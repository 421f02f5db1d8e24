import type { Kysely, Migration } from 'kysely';

/**
 * Indexes for the retention job (old rows found without scanning whole tables) and the metrics
 * computed at scrape time (recent sessions, pending and recently resolved requests, open deliveries).
 */
export function retention(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.createIndex('events_occurred').on('events').column('occurred_at').execute();
      await db.schema.createIndex('deliveries_status').on('deliveries').columns(['status', 'updated_at']).execute();
      await db.schema.createIndex('results_expiry').on('results').column('expires_at').execute();
      await db.schema.createIndex('sessions_finished').on('sessions').column('finished_at').execute();
      await db.schema
        .createIndex('assistance_state')
        .on('assistance_requests')
        .columns(['state', 'resolved_at'])
        .execute();
    },
  };
}
