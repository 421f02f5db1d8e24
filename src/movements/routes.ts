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
const Amount = Type.String({
  pattern: '^[0-9]{1,15}(\\.[0-9]{1,4})?$',
  description: 'A decimal amount, compared with the size of each movement (its sign ignored)',
  examples: ['100.00'],
});
/** The filters of the list and of its CSV export. */
const MovementFilters = {
  from: Type.Optional(DateOnly),
  to: Type.Optional(DateOnly),
  bank_account_id: Type.Optional(Type.String({ maxLength: 64 })),
  q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the description or reference, any case' })),
  min_amount: Type.Optional(Amount),
  max_amount: Type.Optional(Amount),
};
/** Rows in one CSV export at most (a spreadsheet's comfortable size). */
const CSV_MAX_ROWS = 100_000;

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
              ...MovementFilters,
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

    app.get(
      '/accounts/:id/movements.csv',
      {
        config: { scopes: ['data:read'] },
        schema: {
          tags,
          security,
          summary: 'Stored movements as CSV (the same filters as the list, every page)',
          description: `Columns: booked_at, amount, currency, name, reference, bank_account_id, id. At most ${CSV_MAX_ROWS} rows, newest first.`,
          params: AccountParams,
          querystring: Type.Object(MovementFilters, { additionalProperties: false }),
          produces: ['text/csv'],
          response: {
            200: {
              description: 'CSV (RFC 4180), UTF-8',
              content: {
                'text/csv': {
                  schema: Type.String({ examples: ['booked_at,amount,currency,name,reference,bank_account_id,id'] }),
                },
              },
            },
            ...errorResponses(400, 403, 404),
          },
        },
      },
      async (request, reply) => {
        const account = unwrap(await accountFor(db, principalOf(request), request.params.id));
        const lines = [CSV_COLUMNS.join(',')];
        let cursor: string | undefined;
        do {
          const page = await listMovements(db, account.id, { ...request.query, limit: 500, cursor });
          for (const m of page.data) lines.push(CSV_COLUMNS.map((column) => csvCell(m[column])).join(','));
          cursor = page.next_cursor ?? undefined;
        } while (cursor && lines.length <= CSV_MAX_ROWS);
        const name = `movements-${account.name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 60) || account.id}.csv`;
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}"`)
          .send(`${lines.slice(0, CSV_MAX_ROWS + 1).join('\r\n')}\r\n`);
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
            movementId: row.id,
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

const CSV_COLUMNS = ['booked_at', 'amount', 'currency', 'name', 'reference', 'bank_account_id', 'id'] as const;

/** A CSV field: quoted when it holds a separator, a quote or a line break; a leading =+-@ is defused for spreadsheets. */
function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+@\t\r]/.test(value) || (/^-/.test(value) && !/^-[0-9.]+$/.test(value)) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
