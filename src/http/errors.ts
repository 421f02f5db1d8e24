import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ERROR_STATUS, type ErrorCode, type ErrorDetail } from '../core/errors.js';
import type { Failure } from '../core/result.js';
import { isStorageUnavailable } from '../store/errors.js';
import { validationDetails } from './validation-details.js';

/** Turns a service refusal into the HTTP error. */
export function unwrap<T>(result: { ok: true; value: T } | Failure): T {
  if (result.ok) return result.value;
  throw new ApiError(result.code, result.message, {
    ...(result.details ? { details: result.details } : {}),
    ...(result.retryAfter !== undefined ? { retryAfter: result.retryAfter } : {}),
  });
}

const TOO_LARGE = { code: 'PAYLOAD_TOO_LARGE', message: 'the body is larger than the server accepts' } as const;
const MEDIA_TYPE = {
  code: 'UNSUPPORTED_MEDIA_TYPE',
  message: 'this content type is not accepted here (the API takes application/json)',
} as const;
const NOT_JSON = { code: 'VALIDATION_FAILED', message: 'the body is not valid JSON' } as const;

/** Fastify's own error codes mapped to ours, with the message a client should read. */
const FASTIFY_CODES: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'VALIDATION_FAILED',
    message: 'the Content-Length does not match the body',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: NOT_JSON,
  FST_ERR_CTP_INVALID_JSON_BODY: NOT_JSON,
  FST_ERR_BAD_URL: { code: 'VALIDATION_FAILED', message: 'the URL is not valid percent-encoded UTF-8' },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'VALIDATION_FAILED',
    message: 'a path segment is longer than any id of this API',
  },
};

/** Our code for any other 4xx Fastify or a plugin raises (their messages may echo the request). */
const BY_STATUS: Record<number, { code: ErrorCode; message: string }> = {
  401: { code: 'UNAUTHORIZED', message: 'authentication is required' },
  403: { code: 'FORBIDDEN', message: 'this request is not allowed' },
  404: { code: 'NOT_FOUND', message: 'not found' },
  409: { code: 'CONFLICT', message: 'the request conflicts with the current state' },
  413: TOO_LARGE,
  415: MEDIA_TYPE,
  429: { code: 'RATE_LIMITED', message: 'too many requests; retry later' },
};

const INVALID = { code: 'VALIDATION_FAILED', message: 'the request is invalid' } as const;

/** The one error body of api.md. */
export function errorBody(code: ErrorCode, message: string, details?: ErrorDetail[]) {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

/** Sends `code` with its status (and `x-request-id`, which hooks that never ran could not set). */
function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  details?: ErrorDetail[],
) {
  reply.header('x-request-id', request.id);
  return reply.status(ERROR_STATUS[code]).send(errorBody(code, message, details));
}

/**
 * Errors Fastify raises before a request reaches a route (malformed percent-encoding, an over-long
 * path segment): the `frameworkErrors` server option.
 */
export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const mapped = (error.code ? FASTIFY_CODES[error.code] : undefined) ?? INVALID;
  void sendError(request, reply, mapped.code, mapped.message);
}

/**
 * Requests Node's HTTP parser refuses (malformed request line or headers, headers over the size
 * limit): the `clientErrorHandler` server option. The body is written by hand: there is no request.
 */
export function clientError(error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const body = JSON.stringify(
    errorBody(
      'VALIDATION_FAILED',
      tooLarge ? 'the request line or headers are too large' : 'the request is not valid HTTP',
    ),
  );
  socket.end(
    `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
}

/** One error shape everywhere (api.md): `{ error: { code, message, details? } }`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) {
      if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
      return sendError(request, reply, error.code, error.message, error.details);
    }
    if (error.validation) {
      const base = error.validationContext === 'body' ? '' : `/${error.validationContext ?? ''}`;
      return sendError(
        request,
        reply,
        'VALIDATION_FAILED',
        'the request is invalid',
        validationDetails(error.validation, base),
      );
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return sendError(request, reply, mapped.code, mapped.message);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      const byStatus = BY_STATUS[error.statusCode] ?? INVALID;
      return sendError(request, reply, byStatus.code, byStatus.message);
    }
    if (isStorageUnavailable(error)) {
      request.log.warn({ err: error }, 'storage unavailable');
      return sendError(request, reply, 'UNAVAILABLE', 'storage is unreachable; retry in a moment');
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(request, reply, 'INTERNAL', 'internal error; see the server log with the request id');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`),
  );
}
