import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { accountFor } from '../accounts/access.js';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, decodeCursor, encodeCursor, errorResponses, Nullable, Timestamp } from '../http/schemas.js';
import { balanceHistory, codeRows, lastDays, mediansBy, perDay, runsSince } from './queries.js';

/**
 * Read-only figures for the dashboard's pictures: login health per day, balances over time, and
 * every code request with how long it took and who answered.
 */
const tags = ['insights'];
const security = [{ apiKey: [] }];
const DAY_MS = 86_400_000;
/** Runs read for one account's strip at most (a login every 5 minutes for 30 days is 8 640). */
const MAX_RUNS = 10_000;

const Days = (fallback: number, max: number) =>
  Type.Object(
    {
      days: Type.Integer({
        minimum: 1,
        maximum: max,
        default: fallback,
        description: 'Calendar days (UTC) back from today',
      }),
    },
    { additionalProperties: false },
  );

const DayHealth = Type.Object({
  date: Type.String({ format: 'date' }),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  waited: Type.Integer({ description: 'Runs that waited for a code or an approval' }),
});
const RunHealth = Type.Object({
  session_id: Type.String(),
  at: Timestamp,
  state: Type.String({ examples: ['succeeded'] }),
  failure_category: Nullable(Type.String()),
  waited_ms: Nullable(Type.Integer({ description: 'Time spent waiting for codes or approvals, ms' })),
});
const Answerer = Type.Object({
  type: Type.Union([Type.Literal('user'), Type.Literal('api_key'), Type.Literal('app_token'), Type.Literal('system')]),
  id: Nullable(Type.String()),
  label: Nullable(Type.String({ description: "The user's email or the key's name" })),
});
const CodeRow = Type.Object({
  id: Type.String(),
  account_id: Type.String(),
  type: Type.Union([Type.Literal('otp'), Type.Literal('approval')]),
  source: Nullable(
    Type.String({
      description: 'dashboard, api, sms_relay, totp, widget, connect_commit, or bank_app for approvals',
      examples: ['dashboard'],
    }),
  ),
  verdict: Type.Union([
    Type.Literal('pending'),
    Type.Literal('accepted'),
    Type.Literal('rejected'),
    Type.Literal('expired'),
    Type.Literal('withdrawn'),
  ]),
  created_at: Timestamp,
  resolved_at: Nullable(Timestamp),
  time_to_code_ms: Nullable(Type.Integer({ description: 'From the prompt to the accepted code, ms' })),
  answered_by: Nullable(Answerer),
});
const Median = Type.Object({
  key: Type.String({ description: 'The account id, or `type:id` of who answered' }),
  label: Nullable(Type.String()),
  median_ms: Type.Integer(),
  count: Type.Integer(),
});

export function insightRoutes(deps: ApiDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/insights/login-health',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: 'Logins per day of every account (the accounts list sparklines)',
          querystring: Days(30, 90),
          response: {
            200: Type.Object({
              data: Type.Array(Type.Object({ account_id: Type.String(), days: Type.Array(DayHealth) })),
            }),
            ...errorResponses(400, 403),
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const now = deps.clock();
        const days = lastDays(now, request.query.days);
        const ids = principal.accountIds ? [...principal.accountIds] : null;
        const runs = await runsSince(db, principal.orgId, ids, Date.parse(days[0]!), now, MAX_RUNS * 10);
        const byAccount = new Map<string, typeof runs>();
        for (const run of runs) byAccount.set(run.account_id, [...(byAccount.get(run.account_id) ?? []), run]);
        return {
          data: [...byAccount.entries()].map(([account_id, list]) => ({ account_id, days: perDay(list, days) })),
        };
      },
    );

    app.get(
      '/accounts/:id/insights/login-health',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: "One account's logins: each run and each day",
          params: AccountParams,
          querystring: Days(30, 90),
          response: {
            200: Type.Object({ runs: Type.Array(RunHealth), days: Type.Array(DayHealth) }),
            ...errorResponses(400, 403, 404),
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const account = unwrap(await accountFor(db, principal, request.params.id));
        const now = deps.clock();
        const days = lastDays(now, request.query.days);
        const runs = await runsSince(db, principal.orgId, [account.id], Date.parse(days[0]!), now, MAX_RUNS);
        return { runs: runs.map(({ account_id: _, ...run }) => run), days: perDay(runs, days) };
      },
    );

    app.get(
      '/accounts/:id/insights/balances',
      {
        config: { scopes: ['data:read'] },
        schema: {
          tags,
          security,
          summary: 'Each bank account with its balance at the end of every day',
          description:
            'Rebuilt from the latest balance the bank gave and the movements booked since; empty history when the bank gives no balance.',
          params: AccountParams,
          querystring: Days(90, 366),
          response: {
            200: Type.Object({
              data: Type.Array(
                Type.Object({
                  id: Type.String(),
                  name: Type.String(),
                  iban: Nullable(Type.String()),
                  currency: Type.String({ examples: ['EUR'] }),
                  type: Type.String(),
                  balance_current: Nullable(Type.String({ examples: ['1520.30'] })),
                  balance_available: Nullable(Type.String()),
                  balance_as_of: Nullable(Type.String()),
                  history: Type.Array(Type.Object({ date: Type.String({ format: 'date' }), balance: Type.String() })),
                }),
              ),
            }),
            ...errorResponses(400, 403, 404),
          },
        },
      },
      async (request) => {
        const account = unwrap(await accountFor(db, principalOf(request), request.params.id));
        return { data: await balanceHistory(db, account.id, lastDays(deps.clock(), request.query.days)) };
      },
    );

    app.get(
      '/insights/codes',
      {
        config: { scopes: ['otp:read'] },
        schema: {
          tags,
          security,
          summary: 'Every code request: source, time to code, verdict, who answered; medians per operator and account',
          description: 'Medians cover the last 30 days; the list pages newest first.',
          querystring: Type.Object(
            {
              limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
              account_id: Type.Optional(Type.String({ maxLength: 64 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              data: Type.Array(CodeRow),
              next_cursor: Nullable(Type.String()),
              medians: Type.Object({ by_operator: Type.Array(Median), by_account: Type.Array(Median) }),
            }),
            ...errorResponses(400, 403, 404),
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const { limit, cursor, account_id } = request.query;
        let accountIds = principal.accountIds ? [...principal.accountIds] : null;
        if (account_id) accountIds = [unwrap(await accountFor(db, principal, account_id)).id];
        const rows = await codeRows(db, principal.orgId, {
          accountIds,
          before: decodeCursor(cursor),
          limit: limit + 1,
        });
        const more = rows.length > limit;
        const data = more ? rows.slice(0, limit) : rows;
        const recent = await codeRows(db, principal.orgId, {
          accountIds,
          since: deps.clock() - 30 * DAY_MS,
          limit: MAX_RUNS,
        });
        return {
          data,
          next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null,
          medians: {
            by_operator: mediansBy(recent, (r) =>
              r.answered_by
                ? { key: `${r.answered_by.type}:${r.answered_by.id ?? ''}`, label: r.answered_by.label }
                : null,
            ),
            by_account: mediansBy(recent, (r) => ({ key: r.account_id, label: null })),
          },
        };
      },
    );
  };
}
