import type { Kysely } from 'kysely';
import type { Db } from '../store/db.js';
import type { Database } from '../store/schema.js';
import type { Cipher } from './cipher.js';

/**
 * One encrypted column: the table, its key column, and the context each value was encrypted with
 * (bound as authenticated data, so it must be given again to decrypt).
 */
interface EncryptedColumn {
  table: keyof Database;
  key: string;
  column: string;
  context(key: string): string;
}

/**
 * Every secret otpilot stores, with its context. A new `cipher.encrypt` call site must add its column
 * here, or `otpilot master-key rotate` leaves it under the old key (test/operator-cli.test.ts checks the list
 * against the schema's `*_enc` columns).
 */
export const ENCRYPTED_COLUMNS: readonly EncryptedColumn[] = [
  // First: the check value tells a wrong current key before anything else is read.
  { table: 'settings', key: 'key', column: 'value', context: (key) => key },
  { table: 'users', key: 'id', column: 'totp_secret_enc', context: (id) => `${id}:totp` },
  { table: 'accounts', key: 'id', column: 'credentials_enc', context: (id) => `${id}:credentials` },
  { table: 'accounts', key: 'id', column: 'trust_enc', context: (id) => `${id}:trust` },
  { table: 'account_config', key: 'account_id', column: 'totp_secret_enc', context: (id) => `${id}:totp_secret` },
  {
    table: 'account_config',
    key: 'account_id',
    column: 'notification_auth_token_enc',
    context: (id) => `${id}:notification_auth_token`,
  },
  {
    table: 'account_config',
    key: 'account_id',
    column: 'webhook_auth_token_enc',
    context: (id) => `${id}:webhook_auth_token`,
  },
  { table: 'account_config', key: 'account_id', column: 'signing_secret_enc', context: (id) => `${id}:signing_secret` },
  { table: 'assistance_requests', key: 'id', column: 'code_enc', context: (id) => `${id}:code` },
  { table: 'webhook_endpoints', key: 'id', column: 'secret_enc', context: (id) => `${id}:secret` },
  { table: 'relays', key: 'id', column: 'auth_token_enc', context: (id) => `${id}:auth_token` },
  { table: 'held_sms', key: 'id', column: 'message_enc', context: (id) => `${id}:sms` },
];

/** Settings rows whose value is an envelope (the rest are plain text). */
const ENCRYPTED_SETTINGS = ['master_key_check'];

export type RotationResult =
  | { ok: true; counts: Record<string, number> }
  | { ok: false; reason: string; table?: string; id?: string };

/**
 * Re-encrypts every stored secret from `from` to `to` in one transaction: either all of them move to
 * the new key or none does. Every server process must be stopped meanwhile (one still running would
 * go on writing with the old key). Refuses, changing nothing, when `from` does not open the store.
 */
export async function rotateMasterKey(db: Db, from: Cipher, to: Cipher): Promise<RotationResult> {
  try {
    return await db.transaction().execute(async (trx) => {
      const counts: Record<string, number> = {};
      for (const spec of ENCRYPTED_COLUMNS) {
        // Table and column names come from the list above, never from input; untyped on purpose.
        const any = trx as unknown as Kysely<Record<string, Record<string, string | null>>>;
        let query = any.selectFrom(spec.table).selectAll().where(spec.column, 'is not', null);
        if (spec.table === 'settings') query = query.where('key', 'in', ENCRYPTED_SETTINGS);
        const rows = (await query.execute()).map((row) => ({
          k: row[spec.key] as string,
          v: row[spec.column] as string,
        }));
        for (const row of rows) {
          let plain: string;
          try {
            plain = from.decrypt(row.v, spec.context(row.k));
          } catch {
            throw new RotationRefused(`${spec.table}.${spec.column} of ${row.k} does not open with the current key`);
          }
          await any
            .updateTable(spec.table)
            .set({ [spec.column]: to.encrypt(plain, spec.context(row.k)) })
            .where(spec.key, '=', row.k)
            .execute();
        }
        const name = `${spec.table}.${spec.column}`;
        counts[name] = (counts[name] ?? 0) + rows.length;
      }
      return { ok: true as const, counts };
    });
  } catch (error) {
    if (error instanceof RotationRefused) return { ok: false, reason: error.message };
    throw error;
  }
}

class RotationRefused extends Error {}
