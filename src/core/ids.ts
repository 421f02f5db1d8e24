import { randomBytes } from 'node:crypto';

/** Prefixes of every public id (docs/api.md "Conventions"). */
export type IdPrefix =
  | 'acc'
  | 'pay'
  | 'ses'
  | 'asr'
  | 'sub'
  | 'mov'
  | 'key'
  | 'whk'
  | 'evt'
  | 'res'
  | 'rcn'
  | 'usr'
  | 'org'
  | 'bac'
  | 'aud'
  | 'req'
  | 'dlv'
  | 'uss'
  | 'rly'
  | 'sms'
  | 'apt'
  | 'bsc';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

let lastTime = 0;
let lastRandom: Uint8Array = new Uint8Array(10);

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 base32 characters
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

function increment(bytes: Uint8Array): Uint8Array {
  const next = new Uint8Array(bytes);
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] === 255) {
      next[i] = 0;
      continue;
    }
    next[i] = (next[i] ?? 0) + 1;
    break;
  }
  return next;
}

/**
 * A prefixed, time-sortable id (`acc_01j…`): 48 bits of milliseconds and 80 random bits, as in ULID,
 * and monotonic within one process so that ids created in the same millisecond still sort by creation.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  if (now <= lastTime) {
    lastRandom = increment(lastRandom);
  } else {
    lastTime = now;
    lastRandom = new Uint8Array(randomBytes(10));
  }
  return `${prefix}_${encodeTime(lastTime)}${encodeRandom(lastRandom)}`;
}

/**
 * Like `newId`, but the random part is always fresh: for ids that act as a capability (a reconnect
 * id opens a bank login to whoever holds it with the publishable app token), which must not be
 * derivable from another id the process handed out in the same millisecond.
 */
export function newUnguessableId(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(Math.max(0, Math.floor(now)))}${encodeRandom(new Uint8Array(randomBytes(10)))}`;
}

/** True when `value` looks like an id with this prefix (cheap shape check, not an existence check). */
export function isId(prefix: IdPrefix, value: string): boolean {
  return (
    value.length === prefix.length + 27 &&
    value.startsWith(`${prefix}_`) &&
    /^[0-9a-z]+$/.test(value.slice(prefix.length + 1))
  );
}

/** When an id from `newId` was made (epoch ms), or null when `value` is not such an id. */
export function timeOfId(prefix: IdPrefix, value: string): number | null {
  if (!isId(prefix, value)) return null;
  let ms = 0;
  for (const char of value.slice(prefix.length + 1, prefix.length + 11)) {
    const digit = ALPHABET.indexOf(char);
    if (digit === -1) return null;
    ms = ms * 32 + digit;
  }
  return ms;
}
