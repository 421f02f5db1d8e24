import type { ErrorCode } from '../core/errors.js';
import { type Failure, fail } from '../core/result.js';
import type { SubmitReason, SubmitResult } from './submit.js';

const CODES: Record<SubmitReason, ErrorCode> = {
  no_pending: 'NO_PENDING_REQUEST',
  stale: 'STALE_REQUEST',
  approval: 'CONFLICT',
  session_lost: 'SESSION_LOST',
  format: 'CODE_FORMAT',
  in_flight: 'CODE_IN_FLIGHT',
  rate_limited: 'RATE_LIMITED',
};

/**
 * A refused submission as the API reports it. `field` is the caller's own name for the code in its
 * request body (`/code`, or `/otp` for a connect commit), so a format detail points at what the caller sent.
 */
export function submitFailure(result: Extract<SubmitResult, { ok: false }>, field: string): Failure {
  const details = result.detail !== undefined ? [{ path: field, message: result.detail }] : undefined;
  const failure = fail(CODES[result.reason], result.message, details);
  return result.retryAfterMs !== undefined
    ? { ...failure, retryAfter: Math.ceil(result.retryAfterMs / 1000) }
    : failure;
}
