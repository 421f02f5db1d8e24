import type { EventType } from '../core/events.js';

/** An organization's webhook endpoint as the fan-out sees it. */
export interface EndpointSubscriber {
  id: string;
  orgId: string;
  /** null: every event type. */
  events: ReadonlySet<string> | null;
  /** null: every account of the organization. */
  accountIds: ReadonlySet<string> | null;
}

/** An account's own receivers: its notification endpoint and its result webhook. */
export interface AccountSubscriber {
  /** The notification endpoint is set. */
  notify: boolean;
  /** The event types it wants; null: every type but `bank_movement`. */
  notifyEvents: ReadonlySet<string> | null;
  /** The result webhook is set (it gets `bank_movement` only). */
  result: boolean;
}

export interface Subscribers {
  endpoints: readonly EndpointSubscriber[];
  /** By account id; accounts with no receiver are absent. */
  accounts: ReadonlyMap<string, AccountSubscriber>;
}

/** One delivery to make: the destination key (endpoint id, `notify:<account>`, `result:<account>`). */
export interface Destination {
  destination: string;
  endpointId: string | null;
}

/** The subscribers from their stored rows (JSON lists parsed once per batch, not once per event). */
export function subscribersFrom(
  endpoints: readonly { id: string; org_id: string; events: string | null; account_ids: string | null }[],
  configs: readonly {
    account_id: string;
    notification_endpoint_url: string | null;
    notification_events: string | null;
    webhook_url: string | null;
  }[],
): Subscribers {
  const set = (json: string | null) => (json ? new Set(JSON.parse(json) as string[]) : null);
  return {
    endpoints: endpoints.map((e) => ({
      id: e.id,
      orgId: e.org_id,
      events: set(e.events),
      accountIds: set(e.account_ids),
    })),
    accounts: new Map(
      configs.map((c) => [
        c.account_id,
        {
          notify: c.notification_endpoint_url !== null,
          notifyEvents: set(c.notification_events),
          result: c.webhook_url !== null,
        },
      ]),
    ),
  };
}

/**
 * Where one event goes, in a stable order: the organization's matching endpoints, then the account's
 * notification endpoint, then its result webhook. Pure: no I/O.
 */
export function destinationsFor(
  event: { orgId: string; accountId: string | null; type: EventType },
  subscribers: Subscribers,
): Destination[] {
  const out: Destination[] = [];
  for (const endpoint of subscribers.endpoints) {
    if (endpoint.orgId !== event.orgId) continue;
    if (endpoint.events && !endpoint.events.has(event.type)) continue;
    if (endpoint.accountIds && (event.accountId === null || !endpoint.accountIds.has(event.accountId))) continue;
    out.push({ destination: endpoint.id, endpointId: endpoint.id });
  }
  const account = event.accountId === null ? undefined : subscribers.accounts.get(event.accountId);
  if (!account) return out;
  if (account.notify) {
    const wanted = account.notifyEvents ? account.notifyEvents.has(event.type) : event.type !== 'bank_movement';
    if (wanted) out.push({ destination: `notify:${event.accountId}`, endpointId: null });
  }
  if (account.result && event.type === 'bank_movement')
    out.push({ destination: `result:${event.accountId}`, endpointId: null });
  return out;
}
