import { countsTowardBlock, type FailureCategory, isFatal } from './states.js';

/** 2^6 = 64 times the schedule's interval at most (and never more than a day: see engine/scheduler.ts). */
export const MAX_BACKOFF_LEVEL = 6;

/** The account fields the policy reads. */
export interface FailureHistory {
  consecutive_failures: number;
  backoff_level: number;
  blocked: boolean;
}

/** What a failed session changes on its account. */
export interface FailureConsequence {
  /** The new count of consecutive failures (unchanged when the failure does not count). */
  consecutiveFailures: number;
  backoffLevel: number;
  /** The block's reason when this failure blocks the account (null: no new block). */
  block: string | null;
  /** The login was cut short by us, not the bank: a scheduled account runs again now. */
  runAgainNow: boolean;
}

/**
 * The failure policy, pure: which failures count toward a block (not ours: shutdown, a lost worker,
 * our own overload, a broken or hung connector), which block at once (wrong credentials, a locked login), when the
 * threshold is reached, and when unanswered prompts space the next scheduled logins out.
 */
export function afterFailure(
  category: FailureCategory,
  history: FailureHistory,
  fatalThreshold: number,
): FailureConsequence {
  if (!countsTowardBlock(category)) {
    return {
      consecutiveFailures: history.consecutive_failures,
      backoffLevel: history.backoff_level,
      block: null,
      runAgainNow: category === 'worker_lost' || category === 'overloaded' || category === 'shutdown',
    };
  }
  const consecutiveFailures = history.consecutive_failures + 1;
  // A prompt nobody answered: space the next scheduled logins out (doubling, capped).
  const backoffLevel =
    category === 'assistance_expired' ? Math.min(history.backoff_level + 1, MAX_BACKOFF_LEVEL) : history.backoff_level;
  let block: string | null = null;
  if (!history.blocked) {
    if (isFatal(category)) block = category;
    else if (consecutiveFailures >= fatalThreshold)
      block = `${consecutiveFailures} consecutive failures (last: ${category})`;
  }
  return { consecutiveFailures, backoffLevel, block, runAgainNow: false };
}
