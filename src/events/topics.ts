/**
 * Every bus topic, named in one place so publishers and waiters cannot drift apart. A topic is a
 * doorbell: it says "look again", never what changed (the store is the truth).
 */
export const topics = {
  /** Sessions were queued: workers claim. */
  work: 'work',
  /** Webhook deliveries are due: senders claim. */
  deliveries: 'deliveries',
  /** An outbox event was committed; the payload is its envelope (see `onEvent`). */
  event: 'event',
  /** A code was stored on this request: its waiting login takes it. */
  codeSubmitted: (requestId: string) => `asr:${requestId}`,
  /** A submission on this request got its verdict, or the request closed. */
  verdict: (requestId: string) => `verdict:${requestId}`,
  /** A cancel was requested for this session. */
  session: (sessionId: string) => `session:${sessionId}`,
  /** Wake-ups may have been lost (the bus reconnected): every waiter re-reads now. */
  resync: 'resync',
  /**
   * Something of an optional feature was created (held SMS, a data result, a connect session): its
   * listeners stop believing nothing of it exists (presence.ts).
   */
  created: (feature: 'held_sms' | 'results' | 'connect_sessions') => `created:${feature}`,
  /** Anything in this account's status changed. */
  account: (accountId: string) => `account:${accountId}`,
} as const;
