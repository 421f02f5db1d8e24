import { Type } from 'typebox';
import { Literals, Nullable, Timestamp } from '../http/schemas.js';

/** An organization's webhook endpoint (the secret only in the create response). */
export const EndpointSchema = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Nullable(Type.Array(Type.String(), { description: 'null: every event type' })),
    account_ids: Nullable(Type.Array(Type.String(), { description: 'null: every account of the organization' })),
    description: Type.String(),
    enabled: Type.Boolean(),
    disabled_reason: Nullable(Type.String()),
    failing_since: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'WebhookEndpoint' },
);

export const DeliveryStatusSchema = Literals(['pending', 'succeeded', 'failed', 'dead'] as const);

/** A delivery, with the last attempt's outcome. */
export const DeliverySchema = Type.Object(
  {
    id: Type.String(),
    event_id: Type.String(),
    attempt: Type.Integer(),
    status: DeliveryStatusSchema,
    response_status: Nullable(Type.Integer()),
    duration_ms: Nullable(Type.Integer()),
    error: Nullable(Type.String()),
    next_attempt_at: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Delivery' },
);

/** One attempt of a delivery. */
export const AttemptSchema = Type.Object({
  attempt: Type.Integer(),
  response_status: Nullable(Type.Integer()),
  duration_ms: Type.Integer(),
  error: Nullable(Type.String()),
  response_body: Nullable(Type.String({ description: 'the first 1 KiB' })),
  at: Timestamp,
});
