import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import { notFound } from '../core/errors.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, errorResponses, ListQuery, listOf } from '../http/schemas.js';
import type { Store } from '../store/db.js';
import { movementView } from './ingest.js';
import { listMovements } from './query.js';

const tags = ['movements'];
const security = [{ apiKey: [] }];
const DateOnly = Type.String({ format: 'date', description: 'YYYY-MM-DD, inclusive' });

/** What the movement routes need. */
export interface MovementRoutesDeps {
  store: Pick<Store, 'db'>;
  transact: Transact;
  clock: Clock;
}

export function movementRoutes(deps: MovementRoutesDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/accounts/:id/movements',
      {
        config: { scopes: ['data:read'] },
        schema: {
          tags,
          security,
          summary: 'Stored movements, newest booking first',
          params: AccountParams,
          querystring: Type.Object(
            {
              ...ListQuery.properties,
              from: Type.Optional(DateOnly),
              to: Type.Optional(DateOnly),
              bank_account_id: Type.Optional(Type.String({ maxLength: 64 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: listOf(Type.Ref('Movement')), ...errorResponses(400, 403, 404) },
        },
      },
      async (request) => {
        unwrap(await accountFor(db, principalOf(request), request.params.id));
        return listMovements(db, request.params.id, request.query);
      },
    );

    app.post(
      '/accounts/:id/movements/:movement_id/notify',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: "Re-send a movement's bank_movement event",
          params: Type.Object(
            { id: Type.String({ maxLength: 64 }), movement_id: Type.String({ maxLength: 64 }) },
            { additionalProperties: false },
          ),
          response: { 202: Type.Object({ queued: Type.Boolean() }), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        unwrap(await accountFor(db, principal, request.params.id));
        const row = await db
          .selectFrom('movements')
          .selectAll()
          .where('account_id', '=', request.params.id)
          .where('id', '=', request.params.movement_id)
          .executeTakeFirst();
        if (!row) throw notFound('movement');
        await deps.transact(async (trx, uow) => {
          uow.emit({
            orgId: principal.orgId,
            accountId: row.account_id,
            type: 'bank_movement',
            data: movementView(row),
          });
          await recordAudit(
            trx,
            {
              orgId: principal.orgId,
              actor: principal.actor,
              action: 'movement.notify',
              accountId: row.account_id,
              targetId: row.id,
              outcome: 'queued',
            },
            deps.clock(),
          );
        });
        return reply.status(202).send({ queued: true });
      },
    );
  };
}
