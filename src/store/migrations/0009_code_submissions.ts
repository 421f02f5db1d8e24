import type { Kysely, Migration } from 'kysely';

/**
 * Every code submission with its own verdict (a `?wait=true` answer reads it instead of inferring
 * it from the attempt count), and the submission whose code is in flight on its request.
 */
export function codeSubmissions(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('code_submissions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull().references('assistance_requests.id').onDelete('cascade'))
        .addColumn('via', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('verdict', 'text', (c) => c.notNull())
        .addColumn('submitted_at', ms, (c) => c.notNull())
        .addColumn('judged_at', ms)
        .execute();
      await db.schema.createIndex('code_submissions_request').on('code_submissions').column('request_id').execute();
      await db.schema.alterTable('assistance_requests').addColumn('submission_id', 'text').execute();
    },
  };
}
