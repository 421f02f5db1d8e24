/** What an account of the `fints` bank supplies, read and checked. */
export interface FintsCredentials {
  /** Bankleitzahl: 8 digits. */
  blz: string;
  /** The bank's FinTS PIN/TAN endpoint, http(s). */
  url: string;
  userId: string;
  /** The customer id when the bank's differs from the user id. */
  customerId: string | undefined;
  pin: string;
  /** Preferred TAN method (security function, e.g. 942), or null for the setting's or the bank's first. */
  tanMethod: number | null;
  /** Preferred TAN medium name (a phone, a TAN generator), or null. */
  tanMedium: string | null;
}

export type CredentialsRead = { ok: true; value: FintsCredentials } | { ok: false; problem: string };

/** FinTS text is ISO-8859-1 without control characters; anything else cannot travel in a message. */
const LATIN1 = '[\\u0020-\\u007e\\u00a0-\\u00ff]';
const FINTS_TEXT = new RegExp(`^${LATIN1}+$`);

/**
 * The credential fields' formats (FieldSpec patterns, checked when an account is created or changed),
 * the same rules `readCredentials` applies at login.
 */
export const CREDENTIAL_PATTERNS = {
  blz: { pattern: '^[0-9]{8}$', hint: 'must be the 8-digit German bank code (BLZ)' },
  server_url: { pattern: '^https?://[^\\s/?#@]+(/\\S*)?$', hint: "must be the bank's FinTS server URL (https://…)" },
  user_id: { pattern: `^${LATIN1}{1,30}$`, hint: 'must be 1 to 30 letters, digits or punctuation (ISO-8859-1)' },
  customer_id: { pattern: `^${LATIN1}{1,30}$`, hint: 'must be 1 to 30 letters, digits or punctuation (ISO-8859-1)' },
  pin: {
    pattern: `^${LATIN1}{1,64}$`,
    hint: 'may hold only characters FinTS can carry (ISO-8859-1 letters, digits, punctuation), at most 64',
  },
  tan_method: {
    pattern: '^9([0-8][0-9]|9[0-7])$',
    hint: 'must be a TAN method number from 900 to 997, as the bank lists it',
  },
  tan_medium: { pattern: `^${LATIN1}{1,32}$`, hint: 'must be 1 to 32 letters, digits or punctuation (ISO-8859-1)' },
} as const;

/** A TAN method id (security function) as the bank lists it: 900 to 997. */
export function parseTanMethod(raw: string | undefined | null): number | null | 'invalid' {
  if (raw === undefined || raw === null || raw.trim() === '') return null;
  const value = Number(raw.trim());
  return Number.isInteger(value) && value >= 900 && value <= 997 ? value : 'invalid';
}

export function readCredentials(raw: Readonly<Record<string, string>>): CredentialsRead {
  const blz = (raw['blz'] ?? '').replace(/\s+/g, '');
  if (!/^\d{8}$/.test(blz)) return { ok: false, problem: 'the bank code (BLZ) must have 8 digits' };
  const urlText = (raw['server_url'] ?? '').trim();
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    return { ok: false, problem: 'the FinTS server URL is not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return { ok: false, problem: 'the FinTS server URL must start with https://' };
  const userId = (raw['user_id'] ?? '').trim();
  if (!FINTS_TEXT.test(userId) || userId.length > 30)
    return { ok: false, problem: 'the user id must be 1 to 30 printable characters' };
  const customer = (raw['customer_id'] ?? '').trim();
  if (customer !== '' && (!FINTS_TEXT.test(customer) || customer.length > 30))
    return { ok: false, problem: 'the customer id must be up to 30 printable characters' };
  const pin = raw['pin'] ?? '';
  if (!FINTS_TEXT.test(pin) || pin.length > 64)
    return {
      ok: false,
      problem: 'the PIN must be 1 to 64 characters FinTS can carry (ISO-8859-1, no control characters)',
    };
  const tanMethod = parseTanMethod(raw['tan_method']);
  if (tanMethod === 'invalid') return { ok: false, problem: 'the TAN method must be a number from 900 to 997' };
  const medium = (raw['tan_medium'] ?? '').trim();
  if (medium !== '' && (!FINTS_TEXT.test(medium) || medium.length > 32))
    return { ok: false, problem: 'the TAN medium must be up to 32 printable characters' };
  return {
    ok: true,
    value: {
      blz,
      url: url.toString(),
      userId,
      customerId: customer === '' ? undefined : customer,
      pin,
      tanMethod,
      tanMedium: medium === '' ? null : medium,
    },
  };
}
