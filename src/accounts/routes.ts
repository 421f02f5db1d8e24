import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { listBanks } from '../banks/repo.js';
import type { Config } from '../config.js';
import { notFound } from '../core/errors.js';
import type { Bus } from '../events/bus.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, decodeCursor, errorResponses, ListQuery, listOf, page } from '../http/schemas.js';
import { requestSignal } from '../http/wait.js';
import type { Store } from '../store/db.js';
import { accountFor } from './access.js';
import { accountView, listAccounts } from './repo.js';
import { AccountName, ConfigInputSchema, CreateAccountSchema } from './schemas.js';
import type { AccountsService } from './service.js';
import type { StatusCache } from './status-cache.js';

const tags = ['accounts'];
const security = [{ apiKey: [] }];

/** What the account routes need. */
export interface AccountRoutesDeps {
  store: Pick<Store, 'db'>;
  accounts: AccountsService;
  statusCache: StatusCache;
  bus: Bus;
  config: Pick<Config, 'pollMs'>;
  /** Aborted at shutdown: a waiting status call answers at once. */
  shutdown: AbortSignal;
}

export function accountRoutes(deps: AccountRoutesDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/banks',
      {
        config: { scopes: ['accounts:read'] },
        schema: {
          tags: ['banks'],
          security,
          summary: 'Banks otpilot can log in to',
          response: { 200: Type.Object({ data: Type.Array(Type.Ref('Bank')) }) },
        },
      },
      async () => ({ data: await listBanks(db) }),
    );

    app.get(
      '/accounts',
      {
        config: { scopes: ['accounts:read'] },
        schema: {
          tags,
          security,
          summary: 'List accounts',
          querystring: ListQuery,
          response: { 200: listOf(Type.Ref('Account')) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const rows = await listAccounts(db, {
          orgId: principal.orgId,
          accountIds: principal.accountIds,
          limit: request.query.limit + 1,
          after: decodeCursor(request.query.cursor),
        });
        return page(rows, request.query.limit, accountView);
      },
    );

    app.post(
      '/accounts',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags,
          security,
          summary: 'Create an account (one bank login)',
          body: CreateAccountSchema,
          response: { 201: Type.Ref('Account'), ...errorResponses(400, 403) },
        },
      },
      async (request, reply) => {
        const account = unwrap(await deps.accounts.create(principalOf(request), request.body));
        return reply.status(201).send(account);
      },
    );

    app.get(
      '/accounts/:id',
      {
        config: { scopes: ['accounts:read'] },
        schema: {
          tags,
          security,
          summary: 'Get an account',
          params: AccountParams,
          response: { 200: Type.Ref('Account'), ...errorResponses(403, 404) },
        },
      },
      async (request) => accountView(unwrap(await accountFor(db, principalOf(request), request.params.id))),
    );

    app.patch(
      '/accounts/:id',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags,
          security,
          summary: 'Rename an account',
          params: AccountParams,
          body: Type.Object({ name: AccountName }, { additionalProperties: false }),
          response: { 200: Type.Ref('Account'), ...errorResponses(400, 403, 404) },
        },
      },
      async (request) => unwrap(await deps.accounts.rename(principalOf(request), request.params.id, request.body.name)),
    );

    app.delete(
      '/accounts/:id',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags,
          security,
          summary: 'Delete an account and its data',
          description: 'The body must repeat the account name, so that a script cannot delete the wrong one.',
          params: AccountParams,
          body: Type.Object({ confirmation_name: Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errorResponses(400, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        unwrap(await deps.accounts.remove(principalOf(request), request.params.id, request.body.confirmation_name));
        return reply.status(204).send(null);
      },
    );

    app.delete(
      '/accounts/:id/trust',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags,
          security,
          summary: 'Forget the bank trust stored for an account',
          description:
            'Drops the device token or cookies the connector stored (`trust_expires_at` becomes null), so the next login asks for a code again. Audited as `account.trust.forget`.',
          params: AccountParams,
          response: { 200: Type.Ref('Account'), ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await deps.accounts.forgetTrust(principalOf(request), request.params.id)),
    );

    app.get(
      '/accounts/:id/config',
      {
        config: { scopes: ['accounts:read'] },
        schema: {
          tags,
          security,
          summary: 'Account config (secrets masked)',
          params: AccountParams,
          response: { 200: Type.Ref('AccountConfig'), ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await deps.accounts.getConfig(principalOf(request), request.params.id)),
    );

    app.put(
      '/accounts/:id/config',
      {
        config: { scopes: ['accounts:write'] },
        schema: {
          tags,
          security,
          summary: 'Change account config',
          description: 'Sets the fields given; `null` clears one. Secrets are write-only and read back masked.',
          params: AccountParams,
          body: ConfigInputSchema,
          response: { 200: Type.Ref('AccountConfig'), ...errorResponses(400, 403, 404) },
        },
      },
      async (request) => unwrap(await deps.accounts.putConfig(principalOf(request), request.params.id, request.body)),
    );

    app.get(
      '/accounts/:id/status',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: 'Account status',
          description:
            'Answers with an `ETag`. With `wait=N` (≤ 60) the answer is held until the status differs from the one named by `If-None-Match` (or, without it, from the status when the request arrived), or N seconds pass.',
          params: AccountParams,
          querystring: Type.Object(
            { wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Ref('Status'), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const id = request.params.id;
        // A restricted key learns 403 (or 404 for another organization) before anything is read.
        if (principal.accountIds && !principal.accountIds.has(id)) unwrap(await accountFor(db, principal, id));
        const read = async () => {
          const cached = await deps.statusCache.get(principal.orgId, id);
          if (!cached) throw notFound('account');
          return cached;
        };
        const initial = await read();
        const wait = request.query.wait ?? 0;
        const known = request.headers['if-none-match'] ?? initial.etag;
        const result =
          wait === 0
            ? initial
            : (
                await waitFor({
                  bus: deps.bus,
                  topic: topics.account(id),
                  read,
                  done: (value) => value.etag !== known,
                  until: performance.now() + wait * 1000,
                  clock: () => performance.now(),
                  pollMs: deps.config.pollMs,
                  signal: requestSignal(reply, deps.shutdown),
                })
              ).value;
        reply.header('etag', result.etag);
        return result.status;
      },
    );
  };
}
