import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from 'typebox';
import { iso } from '../core/time.js';
import { principalOf } from '../http/auth.js';
import { decodeCursor, ListQuery, listOf, page } from '../http/schemas.js';
import type { Store } from '../store/db.js';
import type { AuditLogTable } from '../store/schema.js';
import { EntrySchema } from './schemas.js';

const entryView = (row: AuditLogTable): Static<typeof EntrySchema> => ({
  id: row.id,
  actor: { type: row.actor_type, id: row.actor_id },
  action: row.action,
  account_id: row.account_id,
  target_id: row.target_id,
  outcome: row.outcome,
  details: row.details ? (JSON.parse(row.details) as unknown) : null,
  at: iso(row.created_at),
});

/** What the audit log route needs. */
export interface AuditRoutesDeps {
  store: Pick<Store, 'db'>;
}

/** `GET /audit` (admins): who did what, newest first. Entries never hold secrets or codes. */
export function auditRoutes(deps: AuditRoutesDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/audit',
      {
        config: { roles: ['admin'] },
        schema: {
          tags: ['dashboard'],
          summary: 'The audit log, newest first',
          querystring: Type.Object(
            {
              ...ListQuery.properties,
              action: Type.Optional(Type.String({ maxLength: 100 })),
              account_id: Type.Optional(Type.String({ maxLength: 64 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: listOf(EntrySchema) },
        },
      },
      async (request) => {
        const { limit, cursor, action, account_id } = request.query;
        let q = db.selectFrom('audit_log').selectAll().where('org_id', '=', principalOf(request).orgId);
        if (action) q = q.where('action', '=', action);
        if (account_id) q = q.where('account_id', '=', account_id);
        const after = decodeCursor(cursor);
        if (after) q = q.where('id', '<', after);
        return page(
          await q
            .orderBy('id', 'desc')
            .limit(limit + 1)
            .execute(),
          limit,
          entryView,
        );
      },
    );
  };
}
