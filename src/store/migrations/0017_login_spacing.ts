import type { Kysely, Migration } from 'kysely';

/** Per-connector login spacing (issue 13.6): when a worker last started a login to the bank. */
export function loginSpacing(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.alterTable('banks').addColumn('last_login_at', 'bigint').execute();
    },
  };
}
