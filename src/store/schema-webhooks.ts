/** The tables of outbound webhooks: endpoints, deliveries (one per event and destination) and their attempts. */

export interface WebhookEndpointsTable {
  id: string;
  org_id: string;
  url: string;
  /** JSON array of event types, or null for every type. */
  events: string | null;
  /** JSON array of account ids, or null for every account. */
  account_ids: string | null;
  description: string;
  enabled: number;
  /** The `whsec_…` signing secret, encrypted (it must be read back to sign). */
  secret_enc: string;
  /** When the current unbroken run of failed attempts began (null while healthy). */
  failing_since: number | null;
  disabled_reason: string | null;
  created_at: number;
  updated_at: number;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'dead';

export interface DeliveriesTable {
  id: string;
  org_id: string;
  /** `whk_…`, `notify:acc_…` or `result:acc_…`. */
  destination: string;
  endpoint_id: string | null;
  /** The event's account id, '' for organization-wide events: the unit of ordering. */
  account_key: string;
  event_id: string;
  event_seq: number;
  /** `failed`: the last attempt failed and another is scheduled; `dead`: no more attempts. */
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempt: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  /** The body of a message that is not an outbox event (test events); null: built from the event. */
  payload: string | null;
  created_at: number;
  updated_at: number;
}

export interface DeliveryAttemptsTable {
  id: string;
  delivery_id: string;
  attempt: number;
  response_status: number | null;
  duration_ms: number;
  error: string | null;
  /** The first 1 KiB of the response body. */
  response_body: string | null;
  created_at: number;
}
