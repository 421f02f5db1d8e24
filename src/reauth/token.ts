import { randomBytes } from 'node:crypto';
import { hashSecret } from '../security/api-keys.js';

/** Recognisable in logs and by secret scanners, like `otpk_` for API keys. */
const PREFIX = 'otpr_';

/** A reauth token lives this long: 10 minutes. */
export const REAUTH_TOKEN_TTL_MS = 10 * 60_000;

/**
 * A new token and its hash. 256 random bits: a fast hash is enough (nothing to stretch), and the hash
 * is the lookup key, so no comparison of secrets happens at all.
 */
export function generateReauthToken(): { token: string; hash: string } {
  const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashSecret(token) };
}

export function hashReauthToken(token: string): string {
  return hashSecret(token);
}
