import type { EventType } from '../core/events.js';
import { iso } from '../core/time.js';
import type { DeliveriesTable, DeliveryAttemptsTable, DeliveryStatus, WebhookEndpointsTable } from '../store/schema.js';

/** The webhook endpoint object (docs/webhooks.md; the secret only in the create response). */
export interface EndpointView {
  id: string;
  url: string;
  /** null: every event type. */
  events: EventType[] | null;
  /** null: every account of the organization. */
  account_ids: string[] | null;
  description: string;
  enabled: boolean;
  /** Why the endpoint was disabled automatically, if it was. */
  disabled_reason: string | null;
  /** Start of the current unbroken run of failures (null while healthy). */
  failing_since: string | null;
  created_at: string;
  updated_at: string;
}

export function endpointView(row: WebhookEndpointsTable): EndpointView {
  return {
    id: row.id,
    url: row.url,
    events: row.events ? (JSON.parse(row.events) as EventType[]) : null,
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
export interface DeliveryView {
  id: string;
  event_id: string;
  /** Attempts made so far. */
  attempt: number;
  status: DeliveryStatus;
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
}

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

export interface AttemptView {
  attempt: number;
  response_status: number | null;
  duration_ms: number;
  error: string | null;
  /** First 1 KiB of the response body. */
  response_body: string | null;
  at: string;
}

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
