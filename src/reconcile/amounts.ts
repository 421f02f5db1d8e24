/** ISO 4217 codes this runtime knows (Node's ICU list), e.g. EUR, USD, JPY. */
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

const digitsCache = new Map<string, number>();

/** The currency's minor-unit digits (EUR 2, JPY 0, BHD 3); null for an unknown code. */
export function currencyDigits(currency: string): number | null {
  const cached = digitsCache.get(currency);
  if (cached !== undefined) return cached;
  if (!/^[A-Z]{3}$/.test(currency) || !CURRENCIES.has(currency)) return null;
  const digits =
    new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  digitsCache.set(currency, digits);
  return digits;
}

/** Amounts above this (in minor units) are refused: integers stay exact in JavaScript and both stores. */
export const MAX_MINOR = 1e15;

const DECIMAL = /^(-?)(\d{1,16})(?:\.(\d{1,12}))?$/;

/**
 * An exact decimal string ("12.3", "-0.50") in minor units of `digits` decimals; null when it is not
 * a plain decimal, has non-zero digits beyond the currency's, or is too large. No floating point.
 */
export function toMinor(amount: string, digits: number): number | null {
  const parts = DECIMAL.exec(amount);
  if (!parts) return null;
  const [, sign, whole, fraction = ''] = parts;
  if (fraction.length > digits && /[^0]/.test(fraction.slice(digits))) return null;
  const minor = Number(whole! + fraction.slice(0, digits).padEnd(digits, '0'));
  if (!Number.isSafeInteger(minor) || minor > MAX_MINOR) return null;
  return sign === '-' ? -minor : minor;
}

/** Minor units back to the canonical decimal string with the currency's digits ("12.30"). */
export function fromMinor(minor: number, digits: number): string {
  const sign = minor < 0 ? '-' : '';
  const text = String(Math.abs(minor)).padStart(digits + 1, '0');
  return digits === 0 ? `${sign}${text}` : `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** A movement's amount in minor units of its currency, or null when the currency or amount is not usable. */
export function movementMinor(amount: string, currency: string): number | null {
  const digits = currencyDigits(currency.toUpperCase());
  return digits === null ? null : toMinor(amount.trim(), digits);
}
