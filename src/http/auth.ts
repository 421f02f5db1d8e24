import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../core/errors.js';
import type { Scope } from '../core/scopes.js';
import type { Principal } from '../keys/principal.js';
import type { KeysService } from '../keys/service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credentials needed (health, docs, sandbox bank, relays with their own signatures). */
    public?: boolean;
    /** API key scopes; any one of them allows the route. */
    scopes?: Scope[];
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Reads `Authorization: Api-Key <key>`, `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedApiKey(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header) {
    const match = /^(?:Api-Key|Bearer)\s+(\S+)$/i.exec(header);
    return match ? match[1]! : '';
  }
  const key = request.headers['x-api-key'];
  return typeof key === 'string' ? key : null;
}

/** The caller of a `/v1` route; only called on routes behind the auth hook. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route without a principal');
  return request.principal;
}

/**
 * API-key authentication and scope checks for every `/v1` route, before the body is read. A route
 * must either be public or name its scopes; one that does neither is refused (fail closed).
 */
export function installApiKeyAuth(app: FastifyInstance, keys: KeysService): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (request.routeOptions.url === undefined || config.public) return;
    const key = presentedApiKey(request);
    if (key === null) throw new ApiError('UNAUTHORIZED', 'send an API key: Authorization: Api-Key <key>');
    const principal = key === '' ? null : await keys.authenticate(key);
    if (!principal) throw new ApiError('INVALID_API_KEY', 'the API key is unknown, malformed or revoked');
    const scopes = config.scopes;
    if (!scopes || scopes.length === 0) throw new ApiError('FORBIDDEN', 'this route is not open to API keys');
    if (!scopes.some((scope) => principal.scopes.has(scope))) {
      throw new ApiError('FORBIDDEN', `this key lacks the scope ${scopes.join(' or ')}`);
    }
    request.principal = principal;
  });
}
