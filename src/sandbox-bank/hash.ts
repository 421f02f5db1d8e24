/**
 * Cheap deterministic hashing for generated data (phones, accounts, movements). Not for secrets:
 * it only has to be stable across processes and spread values well, and it runs per movement.
 */

/** FNV-1a over UTF-16 code units, finished with murmur3's mixer so nearby inputs land far apart. */
export function hash32(input: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** Derives another well-mixed value from a hash, so one string hash can feed several fields. */
export function rehash(h: number, salt: number): number {
  return fmix32(h ^ Math.imul(salt + 1, 0x9e3779b9));
}

function fmix32(input: number): number {
  let h = input;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Eight lower-case hex characters. */
export function hex8(h: number): string {
  return h.toString(16).padStart(8, '0');
}
