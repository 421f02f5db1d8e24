import type { Kysely } from 'kysely';
import type { Cipher } from '../security/cipher.js';
import type { Database } from '../store/schema.js';
import { newSigningSecret } from './signing.js';

/** The context the account signing secret is encrypted under. */
export const accountSecretContext = (accountId: string) => `${accountId}:signing_secret`;
/** The context an organization endpoint's signing secret is encrypted under. */
export const endpointSecretContext = (endpointId: string) => `${endpointId}:secret`;

/**
 * The account's signing secret, created on first use (the first delivery or the first read). When two
 * callers create one at once, the first write wins and both return it. `created`: this call made it.
 */
export async function ensureSigningSecret(
  db: Kysely<Database>,
  cipher: Cipher,
  accountId: string,
): Promise<{ secret: string; created: boolean }> {
  const read = async () =>
    (
      await db
        .selectFrom('account_config')
        .select('signing_secret_enc')
        .where('account_id', '=', accountId)
        .executeTakeFirstOrThrow()
    ).signing_secret_enc;
  const existing = await read();
  if (existing) return { secret: cipher.decrypt(existing, accountSecretContext(accountId)), created: false };
  const secret = newSigningSecret();
  const result = await db
    .updateTable('account_config')
    .set({ signing_secret_enc: cipher.encrypt(secret, accountSecretContext(accountId)) })
    .where('account_id', '=', accountId)
    .where('signing_secret_enc', 'is', null)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) > 0) return { secret, created: true };
  return { secret: cipher.decrypt((await read())!, accountSecretContext(accountId)), created: false };
}
