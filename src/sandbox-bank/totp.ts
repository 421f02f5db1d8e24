import { createHmac } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (padding and case ignored); throws on a character outside the alphabet. */
export function base32Decode(input: string): Buffer {
  const clean = input.replace(/=+$/, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const index = BASE32.indexOf(ch);
    if (index === -1) throw new Error('invalid base32 character');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 4226 HOTP with HMAC-SHA1. */
export function hotp(key: Buffer, counter: number, digits = 6): string {
  const message = Buffer.alloc(8);
  message.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 TOTP code at `timeMs`. */
export function totpAt(key: Buffer, timeMs: number, stepSeconds = 30, digits = 6): string {
  return hotp(key, Math.floor(timeMs / 1000 / stepSeconds), digits);
}

/** Accepts the current step and `window` steps either side, to absorb clock drift. */
export function verifyTotp(
  key: Buffer,
  code: string,
  timeMs: number,
  window = 1,
  stepSeconds = 30,
  digits = 6,
): boolean {
  if (code.length !== digits) return false;
  const counter = Math.floor(timeMs / 1000 / stepSeconds);
  for (let delta = -window; delta <= window; delta++) {
    if (counter + delta >= 0 && hotp(key, counter + delta, digits) === code) return true;
  }
  return false;
}
