import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../core/errors.js';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { errorResponses } from '../http/schemas.js';
import { refuseIfRestricted } from './principal.js';
import { KeySchema } from './schemas.js';

/** `/v1/api-keys`: key management for integrators and scripts, without the dashboard. */
export function apiKeyRoutes(deps: ApiDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/api-keys',
      {
        config: { scopes: ['keys:read'] },
        schema: {
          tags: ['api keys'],
          summary: "The organization's API keys, newest first (revoked ones included)",
          description: 'A key limited to some accounts cannot list keys (`403`).',
          response: { 200: Type.Object({ data: Type.Array(KeySchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        // Keys reach every account (their scopes and accounts are the organization's business).
        const refused = refuseIfRestricted(principal, 'list keys');
        if (refused) throw new ApiError(refused.code, refused.message);
        return { data: await deps.keys.list(principal.orgId) };
      },
    );

    app.delete(
      '/api-keys/:id',
      {
        config: { scopes: ['keys:write'] },
        schema: {
          tags: ['api keys'],
          summary: 'Revoke an API key',
          description:
            'Takes effect at once in the answering process and within 5 seconds in the others. Revoking a key twice is `404`. A key limited to some accounts cannot revoke keys.',
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const refused = refuseIfRestricted(principal, 'revoke keys');
        if (refused) throw new ApiError(refused.code, refused.message);
        if (!(await deps.keys.revoke(principal.orgId, request.params.id, principal.actor)))
          throw new ApiError('NOT_FOUND', 'API key not found (or already revoked)');
        return reply.status(204).send(null);
      },
    );
  };
}
