import { RESERVED_WEBHOOK_FIELDS } from '../accounts/config.js';
import type { Clock } from '../core/time.js';
import { selectEvents, toEnvelope } from '../events/outbox.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import type { DeliveriesTable } from '../store/schema.js';
import { endpointSecretContext, ensureSigningSecret } from './account-secret.js';
import type { AttemptResult, Sender } from './sender.js';
import { signatureHeaders } from './signing.js';

/** Where and how a delivery is sent. */
interface Target {
  url: string;
  secret: string;
  authorization: string | null;
  /** The result webhook's extra fields, merged under the envelope. */
  extra: Record<string, unknown> | null;
}

/** Where and how to send; null when the destination is gone or disabled. */
async function target(db: Db, cipher: Cipher, delivery: DeliveriesTable): Promise<Target | null> {
  if (delivery.endpoint_id) {
    const endpoint = await db
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('id', '=', delivery.endpoint_id)
      .executeTakeFirst();
    if (endpoint?.enabled !== 1) return null;
    return {
      url: endpoint.url,
      secret: cipher.decrypt(endpoint.secret_enc, endpointSecretContext(endpoint.id)),
      authorization: null,
      extra: null,
    };
  }
  const [kind, accountId] = delivery.destination.split(':') as ['notify' | 'result', string];
  const config = await db
    .selectFrom('account_config')
    .selectAll()
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  if (!config) return null;
  const url = kind === 'notify' ? config.notification_endpoint_url : config.webhook_url;
  if (!url) return null;
  const authType = kind === 'notify' ? config.notification_auth_type : config.webhook_auth_type;
  const tokenEnc = kind === 'notify' ? config.notification_auth_token_enc : config.webhook_auth_token_enc;
  const field = kind === 'notify' ? 'notification_auth_token' : 'webhook_auth_token';
  const token = tokenEnc ? cipher.decrypt(tokenEnc, `${accountId}:${field}`) : null;
  const authorization = token && authType ? `${authType === 'bearer' ? 'Bearer' : 'Api-Key'} ${token}` : null;
  // The first delivery for an account gives it its signing secret (readable at /v1/accounts/:id/signing-secret).
  const { secret } = await ensureSigningSecret(db, cipher, accountId);
  const extra =
    kind === 'result' && config.webhook_extra_fields
      ? (JSON.parse(config.webhook_extra_fields) as Record<string, unknown>)
      : null;
  return { url, secret, authorization, extra };
}

/** The body: the stored payload (test deliveries) or the event's envelope, under the extra fields. */
async function body(db: Db, delivery: DeliveriesTable, extra: Record<string, unknown> | null): Promise<string | null> {
  if (delivery.payload) return delivery.payload;
  const event = await selectEvents(db).where('e.id', '=', delivery.event_id).executeTakeFirst();
  // Pruned, or a movement event whose movement went with its deleted account.
  const envelope = event ? toEnvelope(event) : null;
  if (!envelope) return null;
  if (!extra) return JSON.stringify(envelope);
  const safe = Object.fromEntries(
    Object.entries(extra).filter(([k]) => !(RESERVED_WEBHOOK_FIELDS as readonly string[]).includes(k)),
  );
  return JSON.stringify({ ...safe, ...envelope });
}

/**
 * Sends one delivery: resolves its destination, builds and signs the body (Standard Webhooks) and
 * posts it. Returns why it cannot be sent instead when the destination or the event is gone.
 */
export async function sendDelivery(
  options: { db: Db; cipher: Cipher; sender: Sender; version: string; clock: Clock },
  delivery: DeliveriesTable,
): Promise<{ sent: AttemptResult } | { unsendable: string }> {
  const to = await target(options.db, options.cipher, delivery);
  if (!to) return { unsendable: 'the destination was removed or disabled' };
  const payload = await body(options.db, delivery, to.extra);
  if (payload === null) return { unsendable: 'the event no longer exists' };
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `otpilot/${options.version}`,
    ...signatureHeaders(to.secret, delivery.event_id, options.clock(), payload),
  };
  if (to.authorization) headers.authorization = to.authorization;
  return { sent: await options.sender.post(to.url, headers, payload) };
}
