import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The three Standard Webhooks headers for one attempt. `timestamp` is in ms. */
export function signatureHeaders(
  secret: string,
  messageId: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const at = new Date(timestamp);
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(timestamp / 1000)),
    'webhook-signature': new Webhook(secret).sign(messageId, at, body),
  };
}
