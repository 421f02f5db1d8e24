import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, type ErrorCode, type ErrorDetail } from '../core/errors.js';
import type { Failure } from '../core/result.js';
import { isStorageUnavailable } from '../store/errors.js';

/** Turns a service refusal into the HTTP error. */
export function unwrap<T>(result: { ok: true; value: T } | Failure): T {
  if (result.ok) return result.value;
  throw new ApiError(result.code, result.message, {
    ...(result.details ? { details: result.details } : {}),
    ...(result.retryAfter !== undefined ? { retryAfter: result.retryAfter } : {}),
  });
}

function validationDetails(error: FastifyError): ErrorDetail[] {
  return (error.validation ?? []).map((v) => {
    const params = v.params as Record<string, unknown>;
    const base = `${error.validationContext === 'body' ? '' : `/${error.validationContext ?? ''}`}${v.instancePath}`;
    if (v.keyword === 'additionalProperties')
      return { path: `${base}/${String(params.additionalProperty)}`, message: 'is not a known field' };
    if (v.keyword === 'required') return { path: `${base}/${String(params.missingProperty)}`, message: 'is required' };
    return { path: base || '/', message: v.message ?? 'is invalid' };
  });
}

/** Fastify's own error codes mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_FAILED',
};

/** One error shape everywhere (api.md): `{ error: { code, message, details? } }`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) {
      if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
      return reply.status(error.status).send({
        error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
      });
    }
    if (error.validation) {
      return reply.status(400).send({
        error: { code: 'VALIDATION_FAILED', message: 'the request is invalid', details: validationDetails(error) },
      });
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) {
      const apiError = new ApiError(
        mapped,
        mapped === 'VALIDATION_FAILED' ? 'the body is not valid JSON' : error.message,
      );
      return reply.status(apiError.status).send({ error: { code: apiError.code, message: apiError.message } });
    }
    if (error.statusCode === 429) {
      return reply.status(429).send({ error: { code: 'RATE_LIMITED', message: 'too many requests; retry later' } });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(400).send({ error: { code: 'VALIDATION_FAILED', message: 'the request is invalid' } });
    }
    if (isStorageUnavailable(error)) {
      request.log.warn({ err: error }, 'storage unavailable');
      return reply
        .status(503)
        .send({ error: { code: 'UNAVAILABLE', message: 'storage is unreachable; retry in a moment' } });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply
      .status(500)
      .send({ error: { code: 'INTERNAL', message: 'internal error; see the server log with the request id' } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}
