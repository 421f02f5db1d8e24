import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { scopesOf } from '../auth/roles.js';
import { RoleSchema, UserSchema } from '../auth/schemas.js';
import { userView } from '../auth/service.js';
import { ApiError } from '../core/errors.js';
import { INSTANCE_SCOPES, parseScopes, SCOPES } from '../core/scopes.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { errorResponses, Nullable } from '../http/schemas.js';
import { KeySchema } from '../keys/schemas.js';
import type { KeysService } from '../keys/service.js';
import { createUser } from '../orgs/service.js';
import type { Store } from '../store/db.js';

/** What the user and API key routes need. */
export interface UserRoutesDeps {
  store: Pick<Store, 'db'>;
  transact: Transact;
  clock: Clock;
  keys: Pick<KeysService, 'list' | 'create' | 'revoke'>;
}

/** Dashboard-only routes: users (admin) and the signed-in user's API keys. */
export function userRoutes(deps: UserRoutesDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/users',
      {
        config: { roles: ['admin'] },
        schema: {
          tags: ['dashboard'],
          summary: "The organization's users",
          response: { 200: Type.Object({ data: Type.Array(UserSchema) }) },
        },
      },
      async (request) => {
        const rows = await db
          .selectFrom('users')
          .selectAll()
          .where('org_id', '=', principalOf(request).orgId)
          .orderBy('email')
          .execute();
        return { data: rows.map(userView) };
      },
    );

    app.post(
      '/users',
      {
        config: { roles: ['admin'] },
        schema: {
          tags: ['dashboard'],
          summary: 'Add a user',
          description: 'Without `password`, a temporary one is generated and returned once (`temporary_password`).',
          body: Type.Object(
            {
              email: Type.String({ format: 'email', maxLength: 320 }),
              role: RoleSchema,
              password: Type.Optional(Type.String({ minLength: 10, maxLength: 1024 })),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({ user: UserSchema, temporary_password: Nullable(Type.String()) }),
            ...errorResponses(400, 403, 409),
          },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const created = unwrap(
          await createUser(db, {
            clock: deps.clock,
            orgId: principal.orgId,
            email: request.body.email,
            role: request.body.role,
            ...(request.body.password ? { password: request.body.password } : {}),
            actor: principal.actor,
          }),
        );
        return reply.status(201).send({ user: userView(created.row), temporary_password: created.temporaryPassword });
      },
    );

    app.get(
      '/me/api-keys',
      {
        config: { signedIn: true },
        schema: {
          tags: ['dashboard'],
          summary: 'API keys: your own (admins: the whole organization)',
          response: { 200: Type.Object({ data: Type.Array(KeySchema) }) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        return {
          data: await deps.keys.list(principal.orgId, request.user!.role === 'admin' ? undefined : request.user!.id),
        };
      },
    );

    app.post(
      '/me/api-keys',
      {
        config: { signedIn: true },
        schema: {
          tags: ['dashboard'],
          summary: 'Create an API key (shown once)',
          description: 'A key can hold only scopes its creator\'s role has; `scopes` may be `["*"]` for all of them.',
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 100 }),
              scopes: Type.Array(Type.String({ maxLength: 32 }), {
                minItems: 1,
                maxItems: SCOPES.length + INSTANCE_SCOPES.length + 1,
              }),
              account_ids: Type.Optional(
                Nullable(Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 500 })),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ ...KeySchema.properties, key: Type.String() }), ...errorResponses(400, 403) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const role = request.user!.role;
        const wanted = request.body.scopes.includes('*')
          ? scopesOf(role)
          : parseScopes(request.body.scopes.join(',')).scopes;
        const allowed = new Set(scopesOf(role));
        const beyond = wanted.filter((scope) => !allowed.has(scope));
        if (beyond.length > 0) throw new ApiError('FORBIDDEN', `the ${role} role cannot grant ${beyond.join(', ')}`);
        const created = unwrap(
          await deps.keys.create({
            orgId: principal.orgId,
            name: request.body.name,
            scopes: request.body.scopes.includes('*') ? wanted.join(',') : request.body.scopes.join(','),
            accountIds: request.body.account_ids ?? null,
            createdBy: request.user!.id,
          }),
        );
        return reply.status(201).send(created);
      },
    );

    app.delete(
      '/me/api-keys/:id',
      {
        config: { signedIn: true },
        schema: {
          tags: ['dashboard'],
          summary: 'Revoke an API key',
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const user = request.user!;
        const key = await db
          .selectFrom('api_keys')
          .select(['id', 'created_by'])
          .where('org_id', '=', principal.orgId)
          .where('id', '=', request.params.id)
          .executeTakeFirst();
        if (!key) throw new ApiError('NOT_FOUND', 'API key not found');
        if (user.role !== 'admin' && key.created_by !== user.id)
          throw new ApiError('FORBIDDEN', 'only admins revoke keys they did not create');
        await deps.keys.revoke(principal.orgId, key.id, principal.actor);
        return reply.status(204).send(null);
      },
    );
  };
}
