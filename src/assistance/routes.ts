import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { accountFor } from '../accounts/access.js';
import type { Config } from '../config.js';
import type { CodeVia } from '../core/states.js';
import type { Bus } from '../events/bus.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, decodeCursor, errorResponses, ListQuery, listOf, page } from '../http/schemas.js';
import { requestSignal } from '../http/wait.js';
import type { Principal } from '../keys/principal.js';
import type { Store } from '../store/db.js';
import { findPendingRequest, listRequests } from './reads.js';
import { submitFailure } from './refusals.js';
import { AssistanceStateSchema, SubmitCodeSchema, SubmitResultSchema } from './schemas.js';
import { awaitVerdict, type SubmitDeps, submitCode } from './submit.js';
import { assistanceView } from './view.js';

const tags = ['otp'];
const security = [{ apiKey: [] }];
/** Longest `?wait=true` on a code submission, ms (docs/api.md: ≤ 30 s). */
const SUBMIT_WAIT_MS = 30_000;

/** A person signed in to the dashboard hands codes in through the dashboard; anything else is the API. */
const viaOf = (principal: Principal): CodeVia => (principal.actor.type === 'user' ? 'dashboard' : 'api');

export function assistanceRoutes(
  deps: Omit<SubmitDeps, 'db'> & {
    store: Pick<Store, 'db'>;
    bus: Bus;
    config: Pick<Config, 'pollMs'>;
    shutdown: AbortSignal;
  },
): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  const submitDeps: SubmitDeps = {
    db,
    transact: deps.transact,
    cipher: deps.cipher,
    clock: deps.clock,
    codeLimit: deps.codeLimit,
  };
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
        const principal = principalOf(request);
        const accountId = request.params.id;
        unwrap(await accountFor(db, principal, accountId));
        const submitted = await submitCode(
          submitDeps,
          { via: viaOf(principal), orgId: principal.orgId, actor: principal.actor },
          { accountId, ...(request.body.request_id !== undefined ? { requestId: request.body.request_id } : {}) },
          request.body.code,
        );
        if (!submitted.ok) return unwrap<never>(submitFailure(submitted, '/code'));
        if (!request.query.wait) return reply.status(202).send({ submitted: true, request_id: submitted.requestId });
        const verdict = await awaitVerdict(
          { db, bus: deps.bus, pollMs: deps.config.pollMs, signal: requestSignal(reply, deps.shutdown) },
          submitted,
          SUBMIT_WAIT_MS,
        );
        return reply.status(200).send({
          submitted: true,
          request_id: submitted.requestId,
          outcome: verdict.outcome,
          assistance_request: assistanceView(verdict.request),
        });
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
          ...(state ? { state } : {}),
          limit: limit + 1,
          after: decodeCursor(cursor),
        });
        return page(rows, limit, assistanceView);
      },
    );
  };
}
