import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import { ensureSigningSecret } from '../webhooks/account-secret.js';

/**
 * The account's signing secret (the one its webhooks use, `GET /v1/accounts/{id}/signing-secret`),
 * created on first use so a pull source can verify otpilot's requests with the same key.
 */
export function makeAccountSecrets(deps: { db: Db; cipher: Cipher }): (accountId: string) => Promise<string> {
  return async (accountId) => (await ensureSigningSecret(deps.db, deps.cipher, accountId)).secret;
}
