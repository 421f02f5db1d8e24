import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.js';
import type { ApiDeps } from '../http/deps.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, errorResponses, ListQuery, listOf, Nullable } from '../http/schemas.js';
import { refuseIfRestricted } from '../keys/principal.js';
import {
  AccountSettingsInput,
  AccountSettingsSchema,
  OrgSettingsSchema,
  PaymentBatchSchema,
  PaymentInputSchema,
} from './schemas.js';
import { DEFAULT_POLL_SECONDS } from './settings.js';

const tags = ['reconciliation'];
const security = [{ apiKey: [] }];
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const Payment = Type.Ref('ExpectedPayment');

export function reconcileRoutes(deps: ApiDeps): FastifyPluginAsyncTypebox {
  const service = deps.reconcile;
  return async (app) => {
    app.post(
      '/expected-payments',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: 'Register an expected payment (idempotent on external_id)',
          description:
            '201 when created, 200 when the same external_id exists with the same content, 409 when it differs.',
          body: PaymentInputSchema,
          response: { 200: Payment, 201: Payment, ...errorResponses(400, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const result = unwrap(await service.create(principalOf(request), [request.body], ''));
        return reply.status(result.created[0] ? 201 : 200).send(result.payments[0]);
      },
    );

    app.post(
      '/expected-payments/batch',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: 'Register up to 1000 expected payments at once: all or none',
          body: PaymentBatchSchema,
          response: {
            200: Type.Object({ data: Type.Array(Payment), created: Type.Integer(), existing: Type.Integer() }),
            ...errorResponses(400, 403, 404, 409, 413),
          },
        },
      },
      async (request) => {
        const result = unwrap(await service.create(principalOf(request), request.body.payments, '/payments'));
        const created = result.created.filter(Boolean).length;
        return { data: result.payments, created, existing: result.created.length - created };
      },
    );

    app.get(
      '/expected-payments',
      {
        config: { scopes: ['reconcile:read'] },
        schema: {
          tags,
          security,
          summary: 'Expected payments, newest first',
          querystring: Type.Object(
            {
              ...ListQuery.properties,
              state: Type.Optional(
                Type.Union(['pending', 'matched', 'ambiguous', 'expired', 'cancelled'].map((s) => Type.Literal(s))),
              ),
              account_id: Type.Optional(Type.String({ maxLength: 64 })),
              external_id: Type.Optional(Type.String({ maxLength: 128 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: listOf(Payment), ...errorResponses(400, 403) },
        },
      },
      async (request) => service.list(principalOf(request), request.query as Parameters<typeof service.list>[1]),
    );

    app.get(
      '/expected-payments/:id',
      {
        config: { scopes: ['reconcile:read'] },
        schema: {
          tags,
          security,
          summary: 'One expected payment',
          params: IdParams,
          response: { 200: Payment, ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await service.get(principalOf(request), request.params.id)),
    );

    app.post(
      '/expected-payments/:id/cancel',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: 'Cancel a pending or ambiguous expected payment',
          params: IdParams,
          response: { 200: Payment, ...errorResponses(403, 404, 409) },
        },
      },
      async (request) => unwrap(await service.cancel(principalOf(request), request.params.id)),
    );

    app.post(
      '/expected-payments/:id/resolve',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: 'Settle a pending or ambiguous payment with the movement a person chose',
          params: IdParams,
          body: Type.Object(
            { movement_id: Type.String({ minLength: 1, maxLength: 64 }) },
            { additionalProperties: false },
          ),
          response: { 200: Payment, ...errorResponses(400, 403, 404, 409) },
        },
      },
      async (request) =>
        unwrap(await service.resolve(principalOf(request), request.params.id, request.body.movement_id)),
    );

    app.get(
      '/reconciliation/settings',
      {
        config: { scopes: ['reconcile:read'] },
        schema: {
          tags,
          security,
          summary: "The organization's matching window",
          response: { 200: OrgSettingsSchema, ...errorResponses(403) },
        },
      },
      async (request) => service.orgSettings(principalOf(request)),
    );

    app.put(
      '/reconciliation/settings',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: "Set the organization's matching window",
          body: OrgSettingsSchema,
          response: { 200: OrgSettingsSchema, ...errorResponses(400, 403) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const refused = refuseIfRestricted(principal, 'change the organization’s matching window');
        if (refused) unwrap(refused);
        return service.setOrgSettings(principal, request.body);
      },
    );

    app.get(
      '/accounts/:id/reconciliation',
      {
        config: { scopes: ['reconcile:read'] },
        schema: {
          tags,
          security,
          summary: "The account's reconciliation mode and pull source",
          params: AccountParams,
          response: { 200: AccountSettingsSchema, ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await service.accountSettings(principalOf(request), request.params.id)),
    );

    app.put(
      '/accounts/:id/reconciliation',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: "Set the account's mode (match or passthrough) and pull source",
          params: AccountParams,
          body: AccountSettingsInput,
          response: { 200: AccountSettingsSchema, ...errorResponses(400, 403, 404) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const current = unwrap(await service.accountSettings(principal, request.params.id));
        return unwrap(
          await service.setAccountSettings(principal, request.params.id, {
            mode: request.body.mode ?? current.mode,
            source_url: request.body.source_url === undefined ? current.source_url : request.body.source_url,
            poll_seconds: request.body.poll_seconds ?? current.poll_seconds ?? DEFAULT_POLL_SECONDS,
          }),
        );
      },
    );

    app.post(
      '/accounts/:id/reconciliation/poll',
      {
        config: { scopes: ['reconcile:write'] },
        schema: {
          tags,
          security,
          summary: "Poll the account's source now",
          params: AccountParams,
          response: {
            200: Type.Object({
              created: Type.Integer(),
              cancelled: Type.Integer(),
              unchanged: Type.Integer(),
              error: Nullable(Type.String()),
            }),
            ...errorResponses(403, 404, 409),
          },
        },
      },
      async (request) => unwrap(await service.pollNow(principalOf(request), request.params.id)),
    );
  };
}
