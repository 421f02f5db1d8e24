/** Error codes (docs/api.md "Errors"), each with its HTTP status. */
export const ERROR_STATUS = {
  UNAUTHORIZED: 401,
  INVALID_API_KEY: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VALIDATION_FAILED: 400,
  CODE_FORMAT: 422,
  NO_PENDING_REQUEST: 409,
  STALE_REQUEST: 409,
  CODE_IN_FLIGHT: 409,
  SESSION_LOST: 409,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * The one error type that crosses the HTTP edge. Services return result unions for expected outcomes;
 * the route turns a failed result into an ApiError, and the error handler renders the documented shape.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  /** Seconds, sent as `Retry-After` (RATE_LIMITED). */
  readonly retryAfter: number | undefined;
  /** The status under Fastify's name, for error handlers other than ours (a plugin's own). */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetail[]; retryAfter?: number } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
    this.statusCode = ERROR_STATUS[code];
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const notFound = (what: string): ApiError => new ApiError('NOT_FOUND', `${what} not found`);
