import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EVENT_TYPES } from '../core/events.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import {
  AccountParams,
  decodeCursor,
  encodeCursor,
  errorResponses,
  ListQuery,
  Literals,
  listOf,
  Nullable,
} from '../http/schemas.js';
import type { DeliveryStatus } from '../store/schema.js';
import { AttemptSchema, DeliverySchema, DeliveryStatusSchema, EndpointSchema } from './schemas.js';
import type { WebhooksService } from './service.js';

const tags = ['webhooks'];
const security = [{ apiKey: [] }];
const EventTypes = Type.Array(Literals(EVENT_TYPES), { maxItems: 32 });
// At least one account, or null for all: an empty list would silently match nothing.
const AccountIds = Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 500 });
const Params = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const DeliveryParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), delivery_id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
const Url = Type.String({ minLength: 1, maxLength: 2048 });

/** What the webhook routes need. */
export interface WebhookRoutesDeps {
  webhooks: WebhooksService;
}

export function webhookRoutes(deps: WebhookRoutesDeps): FastifyPluginAsyncTypebox {
  const { webhooks } = deps;
  return async (app) => {
    app.get(
      '/webhooks',
      {
        config: { scopes: ['webhooks:read'] },
        schema: {
          tags,
          security,
          summary: 'Webhook endpoints',
          response: { 200: Type.Object({ data: Type.Array(Type.Ref('WebhookEndpoint')) }) },
        },
      },
      async (request) => ({ data: await webhooks.list(principalOf(request)) }),
    );

    app.post(
      '/webhooks',
      {
        config: { scopes: ['webhooks:write'] },
        schema: {
          tags,
          security,
          summary: 'Add a webhook endpoint',
          description:
            'The URL must resolve to a public address (unless OTPILOT_ALLOW_PRIVATE_URLS=true). `events` empty or absent: every type; `account_ids` absent: every account. The `whsec_` signing secret is in this response only.',
          body: Type.Object(
            {
              url: Url,
              events: Type.Optional(Nullable(EventTypes)),
              account_ids: Type.Optional(Nullable(AccountIds)),
              description: Type.Optional(Type.String({ maxLength: 500 })),
              enabled: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({ ...EndpointSchema.properties, secret: Type.String() }),
            ...errorResponses(400, 403),
          },
        },
      },
      async (request, reply) =>
        reply.status(201).send(unwrap(await webhooks.create(principalOf(request), request.body))),
    );

    app.get(
      '/webhooks/:id',
      {
        config: { scopes: ['webhooks:read'] },
        schema: {
          tags,
          security,
          summary: 'A webhook endpoint',
          params: Params,
          response: { 200: Type.Ref('WebhookEndpoint'), ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await webhooks.get(principalOf(request), request.params.id)),
    );

    app.patch(
      '/webhooks/:id',
      {
        config: { scopes: ['webhooks:write'] },
        schema: {
          tags,
          security,
          summary: 'Change a webhook endpoint',
          description: 'Setting `enabled: true` re-enables an endpoint that was disabled after 5 days of failures.',
          params: Params,
          body: Type.Object(
            {
              url: Type.Optional(Url),
              events: Type.Optional(Nullable(EventTypes)),
              account_ids: Type.Optional(Nullable(AccountIds)),
              description: Type.Optional(Type.String({ maxLength: 500 })),
              enabled: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Ref('WebhookEndpoint'), ...errorResponses(400, 403, 404) },
        },
      },
      async (request) => unwrap(await webhooks.update(principalOf(request), request.params.id, request.body)),
    );

    app.delete(
      '/webhooks/:id',
      {
        config: { scopes: ['webhooks:write'] },
        schema: {
          tags,
          security,
          summary: 'Remove a webhook endpoint and its deliveries',
          params: Params,
          response: { 204: Type.Null(), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        unwrap(await webhooks.remove(principalOf(request), request.params.id));
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/webhooks/:id/deliveries',
      {
        config: { scopes: ['webhooks:read'] },
        schema: {
          tags,
          security,
          summary: "An endpoint's delivery log, newest first",
          params: Params,
          querystring: Type.Object(
            { ...ListQuery.properties, status: Type.Optional(DeliveryStatusSchema) },
            { additionalProperties: false },
          ),
          response: { 200: listOf(Type.Ref('Delivery')), ...errorResponses(403, 404) },
        },
      },
      async (request) => {
        const { limit, cursor, status } = request.query;
        const page = unwrap(
          await webhooks.deliveries(principalOf(request), request.params.id, {
            ...(status ? { status: status as DeliveryStatus } : {}),
            limit,
            after: decodeCursor(cursor),
          }),
        );
        const last = page.rows[page.rows.length - 1];
        return { data: page.rows, next_cursor: page.more && last ? encodeCursor(last.id) : null };
      },
    );

    app.get(
      '/webhooks/:id/deliveries/:delivery_id',
      {
        config: { scopes: ['webhooks:read'] },
        schema: {
          tags,
          security,
          summary: 'A delivery with every attempt (status, duration, first 1 KiB of the response)',
          params: DeliveryParams,
          response: {
            200: Type.Object({
              ...DeliverySchema.properties,
              attempts: Type.Array(AttemptSchema),
            }),
            ...errorResponses(403, 404),
          },
        },
      },
      async (request) =>
        unwrap(await webhooks.delivery(principalOf(request), request.params.id, request.params.delivery_id)),
    );

    app.post(
      '/webhooks/:id/deliveries/:delivery_id/retry',
      {
        config: { scopes: ['webhooks:write'] },
        schema: {
          tags,
          security,
          summary: 'Send a failed or dead delivery again now',
          params: DeliveryParams,
          response: { 202: Type.Ref('Delivery'), ...errorResponses(403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(unwrap(await webhooks.retry(principalOf(request), request.params.id, request.params.delivery_id))),
    );

    app.post(
      '/webhooks/:id/test',
      {
        config: { scopes: ['webhooks:write'] },
        schema: {
          tags,
          security,
          summary: 'Send a test event (type `webhook_test`) to this endpoint',
          params: Params,
          response: { 202: Type.Ref('Delivery'), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) =>
        reply.status(202).send(unwrap(await webhooks.test(principalOf(request), request.params.id))),
    );

    for (const [method, rotate] of [
      ['get', false],
      ['post', true],
    ] as const) {
      app[method](
        rotate ? '/accounts/:id/signing-secret/rotate' : '/accounts/:id/signing-secret',
        {
          config: { scopes: ['accounts:write'] },
          schema: {
            tags: ['accounts'],
            security,
            summary: rotate ? "Replace the account's webhook signing secret" : "The account's webhook signing secret",
            description:
              "The `whsec_` secret that signs this account's own notification and result webhooks (Standard Webhooks). Created on first use; reading it is audited.",
            params: AccountParams,
            response: { 200: Type.Object({ secret: Type.String() }), ...errorResponses(403, 404) },
          },
        },
        async (request) => unwrap(await webhooks.accountSecret(principalOf(request), request.params.id, rotate)),
      );
    }
  };
}
