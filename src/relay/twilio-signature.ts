import { createHmac, timingSafeEqual } from 'node:crypto';

/** Form fields as posted; a repeated field keeps every value. */
export type FormParams = Record<string, string | string[]>;

/**
 * Twilio's request signature (https://www.twilio.com/docs/usage/webhooks/webhooks-security): base64
 * HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio called followed by every
 * POST field's name and value, sorted by name (a repeated field: each distinct value, sorted).
 */
export function twilioSignature(authToken: string, url: string, params: Readonly<FormParams>): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name]!;
    if (Array.isArray(value)) for (const item of [...new Set(value)].sort()) data += name + item;
    else data += name + value;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * The URL with and without its scheme's default port: Twilio signs the URL as configured, and a
 * proxy in front of otpilot may add or drop `:443` on the way (Twilio's own helper tries both).
 */
function portVariants(url: string): string[] {
  const match = /^(https?:\/\/)([^/?#]*)(.*)$/i.exec(url);
  if (!match) return [url];
  const [, scheme, authority, rest] = match as unknown as [string, string, string, string];
  const portStart = authority.indexOf(':', authority.lastIndexOf(']') + 1);
  const host = portStart === -1 ? authority : authority.slice(0, portStart);
  const defaultPort = scheme.toLowerCase() === 'https://' ? ':443' : ':80';
  const port = portStart === -1 ? '' : authority.slice(portStart);
  const variants = [scheme + host + port + rest];
  if (port === '') variants.push(scheme + host + defaultPort + rest);
  else if (port === defaultPort) variants.push(scheme + host + rest);
  return variants;
}

/** Checks `X-Twilio-Signature` in constant time; false for a missing or malformed header. */
export function verifyTwilioSignature(
  authToken: string,
  signature: string | undefined,
  url: string,
  params: Readonly<FormParams>,
): boolean {
  if (!signature) return false;
  const given = Buffer.from(signature, 'utf8');
  return portVariants(url).some((candidate) => {
    const expected = Buffer.from(twilioSignature(authToken, candidate, params), 'utf8');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}
