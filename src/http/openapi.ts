import type { FastifySchema, RouteOptions } from 'fastify';
import { Type } from 'typebox';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const ErrorRef = () => Type.Ref('Error');

/**
 * The error answers every route can give, from what the route declares (`config.public`,
 * `config.scopes`, its method and parameters), added to what its schema documents by hand: 400
 * (malformed URL, unknown query parameter, unstorable text), 401/403 behind credentials, 404 where
 * an id is given, 413/415 where a body can be sent, 503 while storage is down. Also the scopes
 * (`x-scopes`) and the API key requirement of each `/v1` route. The probe suite fails on any
 * status an operation answers that its document does not list.
 */
export function documentErrors(given: FastifySchema | undefined, url: string, route: RouteOptions): FastifySchema {
  const schema = given ?? {};
  const config = (route.config ?? {}) as { public?: boolean; scopes?: string[] };
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const statuses = [400];
  if (!config.public) statuses.push(401, 403);
  // An id in the path or the query names something that may not exist (or belong to another organization).
  const query = Object.keys((schema.querystring as { properties?: object } | undefined)?.properties ?? {});
  if (url.includes(':') || query.some((name) => name.endsWith('_id'))) statuses.push(404);
  if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(413, 415);
  if (url !== '/health') statuses.push(503);
  const response = { ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
  for (const status of statuses) response[status] ??= ErrorRef();
  const v1 = url.startsWith('/v1/') && !config.public;
  return {
    ...schema,
    response,
    ...(v1 && !schema.security ? { security: [{ apiKey: [] }] } : {}),
    ...(config.scopes ? { 'x-scopes': config.scopes } : {}),
  } as FastifySchema;
}
