import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import { accountSecretContext } from '../webhooks/service.js';
import { newSigningSecret } from '../webhooks/signing.js';

/**
 * The account's signing secret (the one its webhooks use, `GET /v1/accounts/{id}/signing-secret`),
 * created on first use so a pull source can verify otpilot's requests with the same key.
 */
export function makeAccountSecrets(deps: { db: Db; cipher: Cipher }): (accountId: string) => Promise<string> {
  return async (accountId) => {
    const row = await deps.db
      .selectFrom('account_config')
      .select('signing_secret_enc')
      .where('account_id', '=', accountId)
      .executeTakeFirstOrThrow();
    if (row.signing_secret_enc) return deps.cipher.decrypt(row.signing_secret_enc, accountSecretContext(accountId));
    const secret = newSigningSecret();
    const stored = await deps.db
      .updateTable('account_config')
      .set({ signing_secret_enc: deps.cipher.encrypt(secret, accountSecretContext(accountId)) })
      .where('account_id', '=', accountId)
      .where('signing_secret_enc', 'is', null)
      .executeTakeFirst();
    if (Number(stored.numUpdatedRows) === 1) return secret;
    // Someone else created it meanwhile: use theirs.
    const again = await deps.db
      .selectFrom('account_config')
      .select('signing_secret_enc')
      .where('account_id', '=', accountId)
      .executeTakeFirstOrThrow();
    return deps.cipher.decrypt(again.signing_secret_enc!, accountSecretContext(accountId));
  };
}
