import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import '@fastify/rate-limit';
import { ApiError } from '../core/errors.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { publicOrigin } from '../http/origin.js';
import { errorResponses } from '../http/schemas.js';
import type { RelayManagement } from './management.js';
import { CreateRelaySchema, InboundSmsSchema, RelayOutcomeSchema, RelaySchema, TwilioSmsSchema } from './schemas.js';
import type { RelayService } from './service.js';
import { type FormParams, verifyTwilioSignature } from './twilio-signature.js';

const tags = ['relays'];
const security = [{ apiKey: [] }];
/** Relayed SMS per minute, per API key or (Twilio) per client address. */
const RELAY_RATE_LIMIT = 120;

export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** Relay management and the JSON relay (`/v1`, and the dashboard mirror). */
export function relayRoutes(deps: { relay: RelayService; relays: RelayManagement }): FastifyPluginAsyncTypebox {
  const { relay, relays } = deps;
  return async (app) => {
    app.get(
      '/relays',
      {
        config: { scopes: ['relay:write'] },
        schema: {
          tags,
          security,
          summary: "The organization's SMS relays",
          response: { 200: Type.Object({ data: Type.Array(RelaySchema) }), ...errorResponses(403) },
        },
      },
      async (request) => ({ data: await relays.list(principalOf(request), publicOrigin(request)) }),
    );

    app.post(
      '/relays',
      {
        config: { scopes: ['relay:write'] },
        schema: {
          tags,
          security,
          summary: 'Create an SMS relay',
          description:
            '`twilio`: give `url` to Twilio as the number\'s "A message comes in" webhook; `auth_token` is the Twilio auth token that signs its requests. `json`: post SMS to `url` (`POST /v1/relay/sms`) with an API key holding `relay:write`. The auth token is never returned.',
          body: CreateRelaySchema,
          response: { 201: RelaySchema, ...errorResponses(400, 403) },
        },
      },
      async (request, reply) => {
        const created = unwrap(await relays.create(principalOf(request), request.body, publicOrigin(request)));
        return reply.status(201).send(created);
      },
    );

    app.delete(
      '/relays/:id',
      {
        config: { scopes: ['relay:write'] },
        schema: {
          tags,
          security,
          summary: 'Delete an SMS relay',
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errorResponses(403, 404) },
        },
      },
      async (request, reply) => {
        unwrap(await relays.remove(principalOf(request), request.params.id));
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/relay/sms',
      {
        config: {
          scopes: ['relay:write'],
          rateLimit: {
            max: RELAY_RATE_LIMIT,
            timeWindow: 60_000,
            hook: 'preHandler',
            keyGenerator: (request: FastifyRequest) =>
              `relay:${request.principal?.orgId ?? '-'}:${request.principal?.actor.id ?? request.ip}`,
          },
        },
        schema: {
          tags,
          security,
          summary: 'Relay one received SMS',
          description:
            "Routed by `to` (the account's `otp_phone`) to the one account waiting for a code; the code is found with the request's descriptor (and the account's `sms_code_pattern`) and submitted like any other. Ambiguity is refused, never guessed: `reason` says why nothing was submitted. An SMS nobody waits for yet is held (`reason: \"held\"`) and used when a request opens.",
          body: InboundSmsSchema,
          response: { 200: RelayOutcomeSchema, ...errorResponses(400, 403, 429) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const { to, from, body, received_at } = request.body;
        return relay.receive(
          { orgId: principal.orgId, actor: principal.actor, accountIds: principal.accountIds, relayId: null },
          { to, from, body, receivedAt: received_at === undefined ? null : Date.parse(received_at) },
        );
      },
    );
  };
}

/** A form body as parsed below: a null prototype, so no field name can reach Object.prototype. */
function parseForm(text: string): FormParams {
  const params: FormParams = Object.create(null) as FormParams;
  for (const [name, value] of new URLSearchParams(text)) {
    const seen = params[name];
    if (seen === undefined) params[name] = value;
    else params[name] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return params;
}

/**
 * Twilio's inbound-SMS webhook. Public (Twilio has no API key): every request must carry a valid
 * `X-Twilio-Signature` for the relay's auth token and the public URL it was sent to. Registered as
 * its own plugin so the form parser exists for this route only (the rest of the API takes JSON).
 */
export function twilioRelayRoutes(deps: { relay: RelayService; relays: RelayManagement }): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, parseForm(typeof body === 'string' ? body : body.toString('utf8')));
    });
    const verified = new WeakMap<FastifyRequest, { orgId: string; relayId: string }>();

    app.post(
      '/relay/twilio/:relay_id',
      {
        config: {
          public: true,
          rateLimit: { max: RELAY_RATE_LIMIT, timeWindow: 60_000, keyGenerator: (request) => `twilio:${request.ip}` },
        },
        schema: {
          tags,
          summary: "Twilio's inbound SMS webhook",
          description:
            "Form-encoded, signed with `X-Twilio-Signature` (HMAC-SHA1 of the public URL and the sorted fields, keyed with the relay's auth token). A missing or wrong signature is `403` and the SMS is not used. Answers an empty TwiML document whatever became of the SMS (the outcome is in the audit log and, when a waiting request could not use it, a `sms_relay_refused` event).",
          consumes: ['application/x-www-form-urlencoded'],
          params: Type.Object({ relay_id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
          body: TwilioSmsSchema,
          response: {
            200: { description: 'empty TwiML', content: { 'text/xml': { schema: Type.String() } } },
            ...errorResponses(403, 404, 415),
          },
        },
        // Before the body's schema check: an unsigned request learns nothing about what it got wrong.
        preValidation: async (request) => {
          const { relay_id } = request.params as { relay_id: string };
          const found = await deps.relays.twilioRelay(relay_id);
          if (!found) throw new ApiError('NOT_FOUND', 'relay not found');
          const header = request.headers['x-twilio-signature'];
          const params = (request.body ?? {}) as FormParams;
          const url = `${publicOrigin(request)}${request.url}`;
          if (!verifyTwilioSignature(found.authToken, typeof header === 'string' ? header : undefined, url, params))
            throw new ApiError('FORBIDDEN', "the X-Twilio-Signature does not match this relay's auth token and URL");
          verified.set(request, { orgId: found.relay.org_id, relayId: found.relay.id });
        },
      },
      async (request, reply) => {
        const relay = verified.get(request);
        if (!relay) throw new Error('twilio relay route reached without a verified signature');
        await deps.relay.receive(
          {
            orgId: relay.orgId,
            actor: { type: 'system', id: relay.relayId },
            accountIds: null,
            relayId: relay.relayId,
          },
          { to: request.body.To, from: request.body.From, body: request.body.Body, receivedAt: null },
        );
        return reply.type('text/xml').send(EMPTY_TWIML);
      },
    );
  };
}
