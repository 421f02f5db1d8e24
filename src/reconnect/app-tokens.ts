import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { recordAudit } from '../audit/repo.js';
import { ApiError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { ok } from '../core/result.js';
import { type Clock, iso } from '../core/time.js';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { unwrap } from '../http/errors.js';
import { errorResponses, Timestamp } from '../http/schemas.js';
import { refuseIfRestricted } from '../keys/principal.js';
import type { Db } from '../store/db.js';
import type { AppTokensTable } from '../store/schema.js';

/** A publishable token as the widget presents it. */
export interface AppToken {
  id: string;
  orgId: string;
  origins: string[];
}

const TOKEN_PATTERN = /^otpa_[A-Za-z0-9_-]{32}$/;
const ORIGIN_PATTERN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;

const view = (row: AppTokensTable) => ({
  id: row.id,
  name: row.name,
  token: row.token,
  allowed_origins: JSON.parse(row.allowed_origins) as string[],
  created_at: iso(row.created_at),
  revoked_at: iso(row.revoked_at),
});

/** The token behind an `x-app-token` header, if it is live. */
export async function findAppToken(db: Db, token: string): Promise<AppToken | null> {
  if (!TOKEN_PATTERN.test(token)) return null;
  const row = await db.selectFrom('app_tokens').selectAll().where('token', '=', token).executeTakeFirst();
  if (!row || row.revoked_at !== null) return null;
  return { id: row.id, orgId: row.org_id, origins: JSON.parse(row.allowed_origins) as string[] };
}

const AppTokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  token: Type.String({ description: 'publishable: it can only open reconnects of this organization' }),
  allowed_origins: Type.Array(Type.String()),
  created_at: Timestamp,
  revoked_at: Type.Union([Timestamp, Type.Null()]),
});

/** `GET/POST /app-tokens`, `DELETE /app-tokens/:id`: the widget's publishable tokens (External and dashboard API). */
export function appTokenRoutes(deps: ApiDeps & { clock: Clock }): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/app-tokens',
      {
        config: { scopes: ['accounts:read'] },
        schema: {
          tags: ['reconnect'],
          summary: "The organization's app tokens (for the reconnect widget)",
          response: { 200: Type.Object({ data: Type.Array(AppTokenSchema) }), ...errorResponses(403) },
        },
      },
      async (request) => {
        const rows = await db
          .selectFrom('app_tokens')
          .selectAll()
          .where('org_id', '=', principalOf(request).orgId)
          .orderBy('id', 'desc')
          .execute();
        return { data: rows.map(view) };
      },
    );

    app.post(
      '/app-tokens',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags: ['reconnect'],
          summary: 'Create an app token',
          description:
            'A publishable `otpa_` token for `otpilot.reconnect({ app_token })`. It works only on the widget endpoints, only for reconnects of this organization, and only from the listed origins (CORS).',
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 100 }),
              allowed_origins: Type.Array(Type.String({ maxLength: 200, pattern: ORIGIN_PATTERN.source }), {
                minItems: 1,
                maxItems: 20,
                description: 'e.g. "https://app.example.com" (scheme, host and port; no path)',
              }),
            },
            { additionalProperties: false },
          ),
          response: { 201: AppTokenSchema, ...errorResponses(400, 403) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        unwrap(refuseIfRestricted(principal, 'manage app tokens') ?? ok(null));
        const now = deps.clock();
        const row: AppTokensTable = {
          id: newId('apt', now),
          org_id: principal.orgId,
          name: request.body.name,
          token: `otpa_${randomBytes(24).toString('base64url')}`,
          allowed_origins: JSON.stringify([...new Set(request.body.allowed_origins.map((o) => o.toLowerCase()))]),
          created_at: now,
          revoked_at: null,
        };
        await deps.transact(async (trx) => {
          await trx.insertInto('app_tokens').values(row).execute();
          await recordAudit(
            trx,
            {
              orgId: principal.orgId,
              actor: principal.actor,
              action: 'app_token.create',
              targetId: row.id,
              outcome: 'ok',
            },
            now,
          );
        });
        return reply.status(201).send(view(row));
      },
    );

    app.delete(
      '/app-tokens/:id',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags: ['reconnect'],
          summary: 'Revoke an app token',
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        unwrap(refuseIfRestricted(principal, 'manage app tokens') ?? ok(null));
        const now = deps.clock();
        const result = await db
          .updateTable('app_tokens')
          .set({ revoked_at: now })
          .where('id', '=', request.params.id)
          .where('org_id', '=', principal.orgId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (result.numUpdatedRows !== 1n) throw new ApiError('NOT_FOUND', 'app token not found');
        await recordAudit(
          db,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'app_token.revoke',
            targetId: request.params.id,
            outcome: 'ok',
          },
          now,
        );
        return reply.status(204).send(null);
      },
    );
  };
}
