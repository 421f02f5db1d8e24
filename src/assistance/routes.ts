import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { accountFor } from '../accounts/access.js';
import '@fastify/rate-limit';
import type { AssistanceState } from '../core/states.js';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, decodeCursor, errorResponses, ListQuery, listOf, page } from '../http/schemas.js';
import { assistanceView, findPendingRequest, listRequests } from './repo.js';
import { AssistanceStateSchema, SubmitCodeSchema, SubmitResultSchema } from './schemas.js';

const tags = ['otp'];
const security = [{ apiKey: [] }];
/** Longest `?wait=true` on a code submission, ms (api.md: ≤ 30 s). */
const SUBMIT_WAIT_MS = 30_000;

export function assistanceRoutes(deps: ApiDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/accounts/:id/otp',
      {
        config: { scopes: ['otp:read', 'status:read'] },
        schema: {
          tags,
          security,
          summary: 'The pending assistance request, if any',
          params: AccountParams,
          response: {
            200: Type.Object({ assistance_request: Type.Union([Type.Ref('AssistanceRequest'), Type.Null()]) }),
            ...errorResponses(403, 404),
          },
        },
      },
      async (request) => {
        unwrap(await accountFor(db, principalOf(request), request.params.id));
        const pending = await findPendingRequest(db, request.params.id);
        return { assistance_request: pending ? assistanceView(pending) : null };
      },
    );

    app.post(
      '/accounts/:id/otp',
      {
        config: {
          scopes: ['otp:write'],
          rateLimit: {
            max: deps.config.codeRateLimitPerMinute,
            timeWindow: 60_000,
            hook: 'preHandler',
            // Per organization and account (auth ran first): nobody outside the organization can spend the budget.
            keyGenerator: (request: FastifyRequest) =>
              `otp:${request.principal?.orgId ?? '-'}:${(request.params as { id: string }).id}`,
          },
        },
        schema: {
          tags,
          security,
          summary: 'Submit a code',
          description:
            'The code is checked against the request descriptor first (CODE_FORMAT, nothing reaches the bank). With `wait=true` the answer waits (≤ 30 s) for the bank and adds `outcome`. A pending request of type `approval` takes no code: 409 CONFLICT.',
          params: AccountParams,
          querystring: Type.Object({ wait: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          body: SubmitCodeSchema,
          response: {
            202: SubmitResultSchema,
            200: SubmitResultSchema,
            ...errorResponses(400, 403, 404, 409, 422, 429),
          },
        },
      },
      async (request, reply) => {
        const submitted = unwrap(
          await deps.assistance.submitCode(principalOf(request), request.params.id, {
            code: request.body.code,
            ...(request.body.request_id !== undefined ? { requestId: request.body.request_id } : {}),
            via: 'api',
          }),
        );
        if (!request.query.wait) return reply.status(202).send({ submitted: true, request_id: submitted.request_id });
        const { outcome, request: assistance } = await deps.assistance.awaitOutcome(submitted, SUBMIT_WAIT_MS);
        return reply
          .status(200)
          .send({ submitted: true, request_id: submitted.request_id, outcome, assistance_request: assistance });
      },
    );

    app.get(
      '/assistance-requests',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: "Assistance requests across the key's accounts, newest first",
          querystring: Type.Object(
            {
              ...ListQuery.properties,
              state: Type.Optional(AssistanceStateSchema),
              account_id: Type.Optional(Type.String({ maxLength: 64 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: listOf(Type.Ref('AssistanceRequest')) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const { limit, cursor, state, account_id } = request.query;
        if (account_id) unwrap(await accountFor(db, principal, account_id));
        const rows = await listRequests(db, {
          orgId: principal.orgId,
          accountIds: principal.accountIds,
          ...(account_id ? { accountId: account_id } : {}),
          ...(state ? { state: state as AssistanceState } : {}),
          limit: limit + 1,
          after: decodeCursor(cursor),
        });
        return page(rows, limit, assistanceView);
      },
    );
  };
}
