import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * A phone number in E.164 (`+31612345678`), or null when `raw` is not a possible international
 * number. Relayed SMS are routed by comparing these strings, so the account's `otp_phone` and the
 * relay's `to` must go through the same function. There is no default country: a national number
 * ("0612345678") is ambiguous without one, so it is refused rather than guessed.
 */
export function toE164(raw: string): string | null {
  const text = raw.trim();
  // `00` is the international prefix of most countries; gateways sometimes send it instead of `+`.
  const international = text.startsWith('00') ? `+${text.slice(2)}` : text;
  if (!international.startsWith('+')) return null;
  const parsed = parsePhoneNumberFromString(international);
  return parsed?.isPossible() ? parsed.number : null;
}

/**
 * Whether an SMS sender is the one an account expects: numbers compare in E.164, alphanumeric
 * sender names ("SandboxBank") case-insensitively.
 */
export function sameSender(expected: string, actual: string): boolean {
  const a = toE164(expected);
  const b = toE164(actual);
  if (a !== null || b !== null) return a === b;
  return expected.trim().toLowerCase() === actual.trim().toLowerCase();
}
