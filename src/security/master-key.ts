import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type MasterKeyResult =
  | { ok: true; key: Buffer; source: 'env' | 'file' | 'created' }
  | { ok: false; reason: string };

/** Accepts 32 bytes as 64 hex characters or base64/base64url (43-44 characters). */
export function parseMasterKey(text: string): Buffer | null {
  const value = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const key = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return key.length === 32 ? key : null;
  }
  return null;
}

/**
 * Master key rules (docs/configuration.md "Master key"): `OTPILOT_MASTER_KEY` wins; otherwise, in
 * embedded mode only, a key file `master.key` in the data folder, created on first start with mode
 * 0600. With PostgreSQL there is no key file: several machines must share the key, so it must be set.
 */
export function loadMasterKey(options: {
  envValue: string | undefined;
  dataDir: string;
  embedded: boolean;
}): MasterKeyResult {
  if (options.envValue !== undefined && options.envValue !== '') {
    const key = parseMasterKey(options.envValue);
    return key
      ? { ok: true, key, source: 'env' }
      : { ok: false, reason: 'OTPILOT_MASTER_KEY must be 32 bytes as 64 hex characters or base64' };
  }
  if (!options.embedded) return { ok: false, reason: 'OTPILOT_MASTER_KEY is required with DATABASE_URL' };
  const file = join(options.dataDir, 'master.key');
  if (existsSync(file)) {
    const key = parseMasterKey(readFileSync(file, 'utf8'));
    return key ? { ok: true, key, source: 'file' } : { ok: false, reason: `${file} does not hold a valid key` };
  }
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { ok: true, key, source: 'created' };
}
