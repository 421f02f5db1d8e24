import type { Static } from 'typebox';
import { iso } from '../core/time.js';
import type { DeliveriesTable, DeliveryAttemptsTable, WebhookEndpointsTable } from '../store/schema.js';
import type { AttemptSchema, DeliverySchema, EndpointSchema } from './schemas.js';

/** The webhook endpoint object (docs/webhooks.md; the secret only in the create response). */
export type EndpointView = Static<typeof EndpointSchema>;

export function endpointView(row: WebhookEndpointsTable): EndpointView {
  return {
    id: row.id,
    url: row.url,
    events: row.events ? (JSON.parse(row.events) as string[]) : null,
    account_ids: row.account_ids ? (JSON.parse(row.account_ids) as string[]) : null,
    description: row.description,
    enabled: row.enabled === 1,
    disabled_reason: row.disabled_reason,
    failing_since: iso(row.failing_since),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** The delivery object (docs/webhooks.md "Delivery log"), with the last attempt's outcome. */
export type DeliveryView = Static<typeof DeliverySchema>;

export function deliveryView(row: DeliveriesTable): DeliveryView {
  return {
    id: row.id,
    event_id: row.event_id,
    attempt: row.attempt,
    status: row.status,
    response_status: row.response_status,
    duration_ms: row.duration_ms,
    error: row.error,
    next_attempt_at: row.status === 'pending' || row.status === 'failed' ? iso(row.next_attempt_at) : null,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export type AttemptView = Static<typeof AttemptSchema>;

export function attemptView(row: DeliveryAttemptsTable): AttemptView {
  return {
    attempt: row.attempt,
    response_status: row.response_status,
    duration_ms: row.duration_ms,
    error: row.error,
    response_body: row.response_body,
    at: iso(row.created_at),
  };
}

/** A new delivery, due now, with no attempt made yet. */
export function newDelivery(
  fields: Pick<
    DeliveriesTable,
    'id' | 'org_id' | 'destination' | 'endpoint_id' | 'account_key' | 'event_id' | 'event_seq' | 'payload'
  >,
  now: number,
): DeliveriesTable {
  return {
    ...fields,
    status: 'pending',
    attempt: 0,
    next_attempt_at: now,
    lease_owner: null,
    lease_expires_at: null,
    response_status: null,
    duration_ms: null,
    error: null,
    created_at: now,
    updated_at: now,
  };
}
