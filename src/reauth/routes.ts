import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import '@fastify/rate-limit';
import type { Config } from '../config.js';
import { ApiError, type ErrorDetail } from '../core/errors.js';
import { principalOf } from '../http/auth.js';
import { unwrap } from '../http/errors.js';
import { AccountParams, errorResponses } from '../http/schemas.js';
import { requestSignal } from '../http/wait.js';
import {
  CommitResultSchema,
  CommitSchema,
  ConnectSessionSchema,
  OpenSessionSchema,
  ReauthTokenSchema,
  SessionHeaders,
} from './schemas.js';
import type { CommitInput, ReauthService } from './service.js';

const tags = ['reauthorisation'];
const security = [{ apiKey: [] }];

const WAITS =
  'Waits (≤ 20 s) for the login to succeed (`response_code` 99), to need input (102 with `ui.form`), or to fail (409 CONFLICT, with the reason).';

/** Exactly one of `otp` and `password`; the schema has already checked their types. */
function commitInput(body: { otp?: string; password?: string }): CommitInput {
  const details: ErrorDetail[] = [];
  if (body.otp !== undefined && body.password !== undefined)
    details.push({ path: '/password', message: 'send either otp or password, not both' });
  if (body.otp === undefined && body.password === undefined)
    details.push({ path: '/otp', message: 'send otp (or password, when the form asks for it)' });
  if (details.length > 0) throw new ApiError('VALIDATION_FAILED', 'the commit is invalid', { details });
  return body.otp !== undefined ? { kind: 'otp', otp: body.otp } : { kind: 'password', password: body.password! };
}

/** Mono-style reauthorisation (docs/api.md): token, connect session, commit. External API only. */
export function reauthRoutes(deps: {
  reauth: ReauthService;
  config: Pick<Config, 'codeRateLimitPerMinute'>;
  shutdown: AbortSignal;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/accounts/:id/reauthorise',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'Issue a reauthorisation token',
          description:
            'A single-use token, valid 10 minutes, for `POST /v1/connect/session`. Only its hash is stored: it is shown once.',
          params: AccountParams,
          response: { 200: ReauthTokenSchema, ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await deps.reauth.issueToken(principalOf(request), request.params.id)),
    );

    app.post(
      '/connect/session',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'Open a connect session with a reauthorisation token',
          description: `Spends the token (a second use, or an expired token: 410 GONE) and starts a login of its account, or follows the one already running. ${WAITS}`,
          body: OpenSessionSchema,
          response: { 200: ConnectSessionSchema, ...errorResponses(400, 403, 404, 409, 410) },
        },
      },
      async (request, reply) =>
        unwrap(
          await deps.reauth.openSession(
            principalOf(request),
            request.body.reauth_token,
            requestSignal(reply, deps.shutdown),
          ),
        ),
    );

    app.get(
      '/connect/session',
      {
        config: { scopes: ['sessions:write'] },
        schema: {
          tags,
          security,
          summary: 'The current step of a connect session',
          description: `For a login still in progress (102 without a form). ${WAITS}`,
          headers: SessionHeaders,
          response: { 200: ConnectSessionSchema, ...errorResponses(400, 403, 404, 409, 410) },
        },
      },
      async (request, reply) =>
        unwrap(
          await deps.reauth.getSession(
            principalOf(request),
            request.headers['x-session-id'],
            requestSignal(reply, deps.shutdown),
          ),
        ),
    );

    app.post(
      '/connect/commit',
      {
        config: {
          scopes: ['sessions:write'],
          // Codes reach the bank from here too: the same budget as POST /v1/accounts/:id/otp, per connect session.
          rateLimit: {
            max: deps.config.codeRateLimitPerMinute,
            timeWindow: 60_000,
            hook: 'preHandler',
            keyGenerator: (request: FastifyRequest) =>
              `commit:${request.principal?.orgId ?? '-'}:${String(request.headers['x-session-id'] ?? '-')}`,
          },
        },
        schema: {
          tags,
          security,
          summary: 'Send what the connect session form asked for',
          description: `\`otp\` goes through the same checks as every code (422 CODE_FORMAT when it cannot fit; nothing reaches the bank); \`password\` replaces the stored password (encrypted; the other credentials stay) and logs in again. ${WAITS} A wrong code answers 102 with the form again and the attempts left.`,
          headers: SessionHeaders,
          body: CommitSchema,
          response: { 200: CommitResultSchema, ...errorResponses(400, 403, 404, 409, 410, 422, 429) },
        },
      },
      async (request, reply) =>
        unwrap(
          await deps.reauth.commit(
            principalOf(request),
            request.headers['x-session-id'],
            commitInput(request.body),
            requestSignal(reply, deps.shutdown),
          ),
        ),
    );
  };
}
