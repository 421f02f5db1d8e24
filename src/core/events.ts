/** Event types and their `status` (docs/webhooks.md "Events"). */
export const EVENT_STATUS = {
  assistance_required: 'assistance.requested',
  assistance_fulfilled: 'assistance.fulfilled',
  assistance_cancelled: 'assistance.cancelled',
  assistance_expired: 'assistance.expired',
  /** The bank was asked to send a new code. */
  assistance_resent: 'assistance.resent',
  login_failed: 'login.failed',
  scrape_failed: 'scrape.failed',
  scrape_succeeded: 'scrape.succeeded',
  account_blocked: 'account.blocked',
  account_reconnected: 'entity.reconnected',
  results_ready: 'results.ready',
  account_reauthorized: 'account.reauthorized',
  bank_movement: 'movement.created',
  /** A relayed SMS reached a waiting request but was not used (data says why). */
  sms_relay_refused: 'relay.refused',
  /** The account's bank trust (no code needed) ends soon. */
  trust_expiring: 'trust.expiring',
  /** A webhook endpoint that failed for 5 days was disabled. */
  webhook_endpoint_disabled: 'webhook.disabled',
  /** Reconciliation: an expected payment was settled by a movement (automatically or by hand). */
  payment_matched: 'payment.matched',
  /** Reconciliation: several equally good movements or payments; a human picks. */
  payment_ambiguous: 'payment.ambiguous',
  /** Reconciliation: an expected payment reached its expiry unpaid. */
  payment_expired: 'payment.expired',
  /** Reconciliation, passthrough accounts: an incoming movement, forwarded without matching. */
  payment_received: 'payment.received',
} as const;

export type EventType = keyof typeof EVENT_STATUS;

export const EVENT_TYPES = Object.keys(EVENT_STATUS) as EventType[];

/** The envelope every consumer sees (webhooks, SSE). */
export interface EventEnvelope {
  id: string;
  type: EventType;
  status: string;
  account_id: string | null;
  data: unknown;
  occurred_at: string;
}
