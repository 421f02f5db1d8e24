import { createHash } from 'node:crypto';
import type { BankingInformation } from 'lib-fints';
import type { FintsCredentials } from './credentials.js';

/**
 * What a FinTS login keeps between runs (in the account's encrypted trust store): the bank parameter
 * data, the user parameter data and the registered system id, so a scheduled login reuses the system
 * id, as banks expect, and skips a TAN the bank does not ask again for that system.
 */
export interface FintsTrust {
  info: BankingInformation;
  /** The TAN method the login used (security function). */
  tanMethod: number | null;
}

const VERSION = 1;

interface Stored {
  v: number;
  /** Which bank login this belongs to (BLZ, URL, user and customer id; never the PIN). */
  fp: string;
  trust: FintsTrust;
  /** SHA-256 of the fields above: a changed or cut value is discarded, never half-used. */
  sum: string;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function fingerprint(c: FintsCredentials): string {
  return sha256(JSON.stringify([c.blz, c.url, c.userId, c.customerId ?? null]));
}

export function encodeTrust(c: FintsCredentials, trust: FintsTrust): string {
  const body = { v: VERSION, fp: fingerprint(c), trust };
  return JSON.stringify({ ...body, sum: sha256(JSON.stringify(body)) } satisfies Stored);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The stored trust when it is intact and belongs to these credentials; null otherwise (nothing stored,
 * another bank login, an older format, a failed integrity check), with the reason for the log.
 */
export function decodeTrust(
  c: FintsCredentials,
  raw: string | null,
): { trust: FintsTrust | null; discarded: string | null } {
  if (raw === null) return { trust: null, discarded: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { trust: null, discarded: 'not JSON' };
  }
  if (!isRecord(parsed) || parsed['v'] !== VERSION) return { trust: null, discarded: 'unknown format' };
  const { sum, ...body } = parsed;
  if (typeof sum !== 'string' || sha256(JSON.stringify(body)) !== sum)
    return { trust: null, discarded: 'integrity check failed' };
  if (body['fp'] !== fingerprint(c)) return { trust: null, discarded: 'credentials changed' };
  const trust = body['trust'];
  if (!isRecord(trust) || !isRecord(trust['info'])) return { trust: null, discarded: 'unknown format' };
  const info = trust['info'];
  if (typeof info['systemId'] !== 'string' || !isRecord(info['bpd']) || !isRecord(info['upd']))
    return { trust: null, discarded: 'incomplete bank data' };
  const method = trust['tanMethod'];
  return {
    trust: { info: info as unknown as BankingInformation, tanMethod: typeof method === 'number' ? method : null },
    discarded: null,
  };
}
