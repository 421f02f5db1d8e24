import type { Kysely, Migration } from 'kysely';

/**
 * Mono-style reauthorisation (issue 5): single-use reauth tokens, stored only as hashes, and the
 * connect sessions they open (one or more logins of one account driven by commits).
 */
export function reauth(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      const ms = 'bigint' as const;
      await db.schema
        .createTable('reauth_tokens')
        // SHA-256 of the token (hex): the token itself is never stored, and the hash is the lookup key.
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .addColumn('used_at', ms)
        .addColumn('connect_session_id', 'text')
        .execute();
      await db.schema.createIndex('reauth_tokens_account').on('reauth_tokens').column('account_id').execute();

      await db.schema
        .createTable('connect_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id'))
        .addColumn('account_id', 'text', (c) => c.notNull())
        // The login the connect session currently follows; a password commit moves it to a new one.
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        // Set once, by the compare-and-set that emits `account_reauthorized`: the event fires once.
        .addColumn('reauthorized_at', ms)
        .execute();
      // A finished scrape looks up the connect session that waits for it.
      await db.schema.createIndex('connect_sessions_session').on('connect_sessions').column('session_id').execute();
      await db.schema.createIndex('connect_sessions_account').on('connect_sessions').column('account_id').execute();
    },
  };
}
