/** Session states. `queued`, `running` and `awaiting_assistance` are active. */
export const SESSION_STATES = ['queued', 'running', 'awaiting_assistance', 'succeeded', 'failed', 'cancelled'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const ACTIVE_SESSION_STATES = [
  'queued',
  'running',
  'awaiting_assistance',
] as const satisfies readonly SessionState[];

/** Assistance request states: pending → fulfilled | cancelled | expired. */
export type AssistanceState = 'pending' | 'fulfilled' | 'cancelled' | 'expired';

/** How a code reached a request (docs/api.md `resolution.via`). */
export type CodeVia = 'dashboard' | 'api' | 'sms_relay' | 'totp' | 'widget' | 'connect_commit';

/** What starts a session. */
export type SessionTrigger = 'schedule' | 'manual' | 'restart';

/**
 * Why a session failed. The connector kinds come from typed connector errors; the rest are the
 * engine's own outcomes.
 */
export type FailureCategory =
  | 'invalid_credentials'
  | 'account_locked'
  | 'code_rejected'
  | 'bank_unavailable'
  | 'connector_broken'
  /** The connector did not answer within its time limit (or the session's): ours to look at, not the bank's. */
  | 'connector_timeout'
  | 'assistance_expired'
  | 'assistance_unavailable'
  | 'attempts_exhausted'
  | 'worker_lost'
  /** A bank call failed or outlived its limit while this worker was saturated: our overload, not the bank's. */
  | 'overloaded'
  | 'shutdown';

/** Fatal failures block the account at once (skip-on-fatal); the others count toward the threshold. */
export function isFatal(category: FailureCategory): boolean {
  switch (category) {
    case 'invalid_credentials':
    case 'account_locked':
      return true;
    case 'code_rejected':
    case 'bank_unavailable':
    case 'connector_broken':
    case 'connector_timeout':
    case 'assistance_expired':
    case 'assistance_unavailable':
    case 'attempts_exhausted':
    case 'worker_lost':
    case 'overloaded':
    case 'shutdown':
      return false;
    default: {
      const never: never = category;
      throw new Error(`unknown failure category ${String(never)}`);
    }
  }
}

/** Failures that say nothing about the account and so do not count toward the block. */
export function countsTowardBlock(category: FailureCategory): boolean {
  return (
    category !== 'shutdown' &&
    category !== 'worker_lost' &&
    category !== 'overloaded' &&
    category !== 'connector_broken' &&
    category !== 'connector_timeout'
  );
}

/** Account status as shown by the API. */
export const ACCOUNT_STATUSES = ['idle', 'queued', 'running', 'awaiting_assistance', 'blocked'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];
