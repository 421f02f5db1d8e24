import type { ErrorCode, ErrorDetail } from './errors.js';

/** An expected refusal, as data. The HTTP edge turns it into an ApiError with the same code. */
export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
  details?: ErrorDetail[];
  /** Seconds until a retry may succeed (RATE_LIMITED). */
  retryAfter?: number;
}

export type Result<T> = { ok: true; value: T } | Failure;

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

export function fail(code: ErrorCode, message: string, details?: ErrorDetail[]): Failure {
  return details ? { ok: false, code, message, details } : { ok: false, code, message };
}
