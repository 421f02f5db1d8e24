import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM envelopes for secrets at rest: `v1.<base64url(iv | tag | ciphertext)>`. The `context`
 * (e.g. `acc_…:credentials`) is bound as additional authenticated data, so a ciphertext copied to
 * another row or field fails to decrypt instead of leaking into the wrong place.
 */
export interface Cipher {
  encrypt(plaintext: string, context: string): string;
  /** Throws on a wrong key, a tampered envelope or a context mismatch. */
  decrypt(envelope: string, context: string): string;
}

const VERSION = 'v1.';

export function makeCipher(key: Buffer): Cipher {
  if (key.length !== 32) throw new Error('the master key must be 32 bytes');
  return {
    encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return VERSION + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
    },
    decrypt(envelope, context) {
      if (!envelope.startsWith(VERSION)) throw new Error('unknown envelope version');
      const raw = Buffer.from(envelope.slice(VERSION.length), 'base64url');
      if (raw.length < 28) throw new Error('envelope too short');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}
