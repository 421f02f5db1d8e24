import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, errorResponses } from '../http/schemas.js';
import { requestSignal } from '../http/wait.js';
import type { DataKind } from '../store/schema.js';
import type { DataService } from './service.js';

const tags = ['data'];
const security = [{ apiKey: [] }];
const DateOnly = Type.String({ format: 'date', description: 'YYYY-MM-DD, inclusive' });

const Refresh = Type.Optional(
  Type.Boolean({ description: 'log in to the bank now instead of answering from the last stored data' }),
);

/** Path segment → stored kind. */
const KINDS: [string, DataKind, string][] = [
  ['identity', 'identity', "The account holder's identity"],
  ['bank-accounts', 'bank_accounts', 'The ledgers inside the bank login'],
  ['balances', 'balances', 'Balances per ledger'],
  ['transactions', 'transactions', 'Transactions, newest booking first'],
];

/** What the data API routes need. */
export interface DataRoutesDeps {
  data: DataService;
  /** Aborted at shutdown: a waiting data call answers at once. */
  shutdown: AbortSignal;
}

export function dataRoutes(deps: DataRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    for (const [segment, kind, summary] of KINDS) {
      const transactions = kind === 'transactions';
      app.get(
        `/accounts/:id/${segment}`,
        {
          config: { scopes: ['data:read'] },
          schema: {
            tags,
            security,
            summary,
            description:
              "Answers from stored data at once, or with `refresh=true` (and when nothing is stored yet) from a live bank login: `OK` when it ends within the wait (`OTPILOT_DATA_WAIT_SECONDS`, default 50), `RECONNECT_REQUIRED` with a `reconnect_id` as soon as the bank wants the owner's code, `PENDING` when the wait runs out (the login goes on; `results_ready` fires), `FAILED`. Always HTTP 200: the envelope's `status` tells.",
            params: AccountParams,
            querystring: Type.Object(
              {
                refresh: Refresh,
                bank_account_id: Type.Optional(Type.String({ maxLength: 64 })),
                ...(transactions
                  ? {
                      from: Type.Optional(DateOnly),
                      to: Type.Optional(DateOnly),
                      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
                      cursor: Type.Optional(Type.String({ maxLength: 200 })),
                    }
                  : {}),
              },
              { additionalProperties: false },
            ),
            response: { 200: Type.Ref('DataEnvelope'), ...errorResponses(400, 403, 404) },
          },
        },
        async (request, reply) => {
          const { refresh, ...params } = request.query as { refresh?: boolean } & Record<string, unknown>;
          // A client that hangs up stops the wait (the login goes on; its result stays readable).
          const signal = requestSignal(reply, deps.shutdown);
          return unwrap(
            await deps.data.call(principalOf(request), request.params.id, kind, params, {
              refresh: refresh === true,
              signal,
            }),
          );
        },
      );
    }

    app.get(
      '/results/:results_id',
      {
        config: { scopes: ['data:read'] },
        schema: {
          tags,
          security,
          summary: 'The results of an earlier data call',
          description: 'The same envelope as the call; kept 30 days, `410 GONE` after.',
          params: Type.Object({ results_id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          response: { 200: Type.Ref('DataEnvelope'), ...errorResponses(403, 404, 410) },
        },
      },
      async (request) => unwrap(await deps.data.result(principalOf(request), request.params.results_id)),
    );
  };
}
