import type { Kysely, Migration } from 'kysely';

/** Optional TOTP second factor for dashboard users, with one-time backup codes. */
export function userTwoFactor(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      // Encrypted; set at enrollment, enforced only once confirmed (totp_enabled_at not null).
      await db.schema.alterTable('users').addColumn('totp_secret_enc', 'text').execute();
      await db.schema.alterTable('users').addColumn('totp_enabled_at', 'bigint').execute();
      // The last time step accepted, so a code seen over someone's shoulder cannot be replayed.
      await db.schema.alterTable('users').addColumn('totp_last_step', 'bigint').execute();
      // JSON array of SHA-256 hashes of the unused backup codes.
      await db.schema.alterTable('users').addColumn('backup_codes', 'text').execute();
    },
  };
}
