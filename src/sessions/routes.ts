import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { accountFor } from '../accounts/access.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, decodeCursor, errorResponses, ListQuery, listOf, page } from '../http/schemas.js';
import type { Store } from '../store/db.js';
import { listSessions, sessionView } from './repo.js';
import { QueuedSchema } from './schemas.js';
import type { SessionsService } from './service.js';

const tags = ['sessions'];
const security = [{ apiKey: [] }];
const SessionParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

/** What the session routes need. */
export interface SessionRoutesDeps {
  store: Pick<Store, 'db'>;
  sessions: SessionsService;
}

export function sessionRoutes(deps: SessionRoutesDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.post(
      '/accounts/:id/scrape',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'Scrape now',
          description:
            'Runs even when the account is blocked, without clearing the block. 409 while a session is active.',
          params: AccountParams,
          response: { 202: QueuedSchema, ...errorResponses(403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply.status(202).send(unwrap(await deps.sessions.scrape(principalOf(request), request.params.id))),
    );

    app.post(
      '/accounts/:id/restart',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'Clear the block and scrape',
          description:
            '`queued: false` with the active session id when one is already active (the block is cleared either way).',
          params: AccountParams,
          response: { 202: QueuedSchema, ...errorResponses(403, 404) },
        },
      },
      async (request, reply) =>
        reply.status(202).send(unwrap(await deps.sessions.restart(principalOf(request), request.params.id))),
    );

    app.get(
      '/accounts/:id/sessions',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: "An account's sessions, newest first",
          params: AccountParams,
          querystring: ListQuery,
          response: { 200: listOf(Type.Ref('Session')), ...errorResponses(403, 404) },
        },
      },
      async (request) => {
        unwrap(await accountFor(db, principalOf(request), request.params.id));
        const rows = await listSessions(db, {
          accountId: request.params.id,
          limit: request.query.limit + 1,
          after: decodeCursor(request.query.cursor),
        });
        return page(rows, request.query.limit, sessionView);
      },
    );

    app.get(
      '/sessions/:id',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: 'A session with its stages and failure category',
          params: SessionParams,
          response: { 200: Type.Ref('Session'), ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await deps.sessions.get(principalOf(request), request.params.id)),
    );

    app.post(
      '/sessions/:id/cancel',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'Cancel a session',
          description:
            'A queued session ends at once; a running one is stopped by its worker (its pending request is cancelled).',
          params: SessionParams,
          response: { 202: Type.Ref('Session'), ...errorResponses(403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply.status(202).send(unwrap(await deps.sessions.cancel(principalOf(request), request.params.id))),
    );
  };
}
