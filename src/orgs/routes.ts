import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { userView } from '../auth/service.js';
import { ApiError } from '../core/errors.js';
import { SCOPES } from '../core/scopes.js';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { unwrap } from '../http/errors.js';
import { errorResponses, Nullable, Timestamp } from '../http/schemas.js';
import { KeySchema } from '../keys/schemas.js';
import { makeKeysService } from '../keys/service.js';
import { createOrganization, createUser, emailTaken, listOrganizations } from './service.js';

const OrganizationSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Timestamp,
  users: Type.Integer({ description: 'Users in the organization' }),
  accounts: Type.Integer({ description: 'Bank accounts in the organization' }),
});
const OrgParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const Email = Type.String({ format: 'email', maxLength: 320 });
const Password = Type.String({ minLength: 10, maxLength: 1024 });

const DESCRIPTION =
  'Instance administration: needs a key with the `instance:admin` scope, which only `otpilot keys create --scopes instance:admin` issues. Each organization is a tenant of its own: its users, keys, accounts, webhooks and events are invisible to every other.';

/** `/v1/organizations`: the instance administrator's API (create tenants, their users and keys). */
export function organizationRoutes(deps: ApiDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  const orgExists = async (id: string) => {
    if (!(await db.selectFrom('organizations').select('id').where('id', '=', id).executeTakeFirst()))
      throw new ApiError('NOT_FOUND', 'organization not found');
  };
  return async (app) => {
    app.get(
      '/organizations',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags: ['organizations'],
          summary: 'Every organization of this instance',
          description: DESCRIPTION,
          response: { 200: Type.Object({ data: Type.Array(OrganizationSchema) }), ...errorResponses(401, 403) },
        },
      },
      async () => ({ data: await listOrganizations(db) }),
    );

    app.post(
      '/organizations',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags: ['organizations'],
          summary: 'Create an organization with its first admin and API key',
          description: `${DESCRIPTION} The admin password (when generated) and the API key (every organization scope) are returned once.`,
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              admin_email: Email,
              admin_password: Type.Optional(Password),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              organization: OrganizationSchema,
              admin_email: Type.String(),
              admin_password: Nullable(
                Type.String({ description: 'Generated password, shown once (null when given)' }),
              ),
              api_key: Type.String({ description: 'Shown once' }),
            }),
            ...errorResponses(400, 401, 403, 409),
          },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const { name, admin_email, admin_password } = request.body;
        if (name.trim() === '')
          throw new ApiError('VALIDATION_FAILED', 'the name is empty', {
            details: [{ path: '/name', message: 'is blank' }],
          });
        const created = await db.transaction().execute(async (trx) => {
          if (await emailTaken(trx, admin_email.trim().toLowerCase())) return null;
          return createOrganization(trx, {
            clock: deps.clock,
            keys: makeKeysService({ db: trx, clock: deps.clock }),
            name: name.trim(),
            adminEmail: admin_email,
            ...(admin_password ? { adminPassword: admin_password } : {}),
            actor: principal.actor,
          });
        });
        if (!created)
          throw new ApiError('CONFLICT', 'that email is already in use (addresses are unique across organizations)');
        const organization = (await listOrganizations(db)).find((o) => o.id === created.orgId)!;
        return reply.status(201).send({
          organization,
          admin_email: created.adminEmail,
          admin_password: admin_password ? null : created.adminPassword,
          api_key: created.apiKey,
        });
      },
    );

    app.post(
      '/organizations/:id/users',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags: ['organizations'],
          summary: 'Add a user to an organization',
          description: `${DESCRIPTION} Without \`password\`, a temporary one is generated and returned once.`,
          params: OrgParams,
          body: Type.Object(
            {
              email: Email,
              role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]),
              password: Type.Optional(Password),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              user: Type.Object({
                id: Type.String(),
                email: Type.String(),
                role: Type.String(),
                created_at: Timestamp,
              }),
              temporary_password: Nullable(Type.String()),
            }),
            ...errorResponses(400, 401, 403, 404, 409),
          },
        },
      },
      async (request, reply) => {
        await orgExists(request.params.id);
        const created = unwrap(
          await createUser(db, {
            clock: deps.clock,
            orgId: request.params.id,
            email: request.body.email,
            role: request.body.role,
            ...(request.body.password ? { password: request.body.password } : {}),
            actor: principalOf(request).actor,
          }),
        );
        return reply.status(201).send({ user: userView(created.row), temporary_password: created.temporaryPassword });
      },
    );

    app.post(
      '/organizations/:id/api-keys',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags: ['organizations'],
          summary: 'Create an API key in an organization (shown once)',
          description: `${DESCRIPTION} \`scopes\` lists organization scopes, or \`["*"]\` for all of them; \`instance:admin\` is never granted here.`,
          params: OrgParams,
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 100 }),
              scopes: Type.Array(Type.String({ maxLength: 32 }), { minItems: 1, maxItems: SCOPES.length + 1 }),
              account_ids: Type.Optional(
                Nullable(Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 500 })),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({ ...KeySchema.properties, key: Type.String() }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (request, reply) => {
        await orgExists(request.params.id);
        if (!request.body.scopes.every((s) => s === '*' || (SCOPES as readonly string[]).includes(s)))
          throw new ApiError('VALIDATION_FAILED', 'unknown or instance scopes', {
            details: [{ path: '/scopes', message: `allowed: ${SCOPES.join(', ')} or *` }],
          });
        const created = unwrap(
          await deps.keys.create({
            orgId: request.params.id,
            name: request.body.name,
            scopes: request.body.scopes.includes('*') ? '*' : request.body.scopes.join(','),
            accountIds: request.body.account_ids ?? null,
            createdBy: null,
          }),
        );
        return reply.status(201).send(created);
      },
    );
  };
}
