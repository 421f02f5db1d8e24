import { randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A random numeric code of `length` digits (leading zeros kept). */
export function numericCode(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += String(randomInt(10));
  return out;
}

/** A random code of upper-case letters and digits. */
export function alphanumericCode(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALNUM.charAt(randomInt(ALNUM.length));
  return out;
}

/** What a person types is compared loosely: spaces and dashes dropped, letters upper-cased. */
export function normalizeSubmittedCode(raw: string): string {
  return raw.replace(/[\s-]+/g, '').toUpperCase();
}
