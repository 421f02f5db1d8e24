import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ApiError } from '../core/errors.js';
import { unwrap } from '../http/errors.js';
import { errorResponses, Timestamp } from '../http/schemas.js';
import type { RateLimits } from '../security/rate-limits.js';
import { SESSION_COOKIE } from './plugin.js';
import { UserSchema } from './schemas.js';
import type { AuthService } from './service.js';
import { SESSION_ABSOLUTE_MS } from './service.js';

const tags = ['dashboard'];

/** Sign-in attempts per address and email per minute before 429. */
const LOGIN_LIMIT = 10;
/** Sign-in attempts per address per minute, whatever the emails, before 429 (one office behind one address fits). */
const LOGIN_ADDRESS_LIMIT = 60;

/** What the sign-in routes need. */
export interface AuthRoutesDeps {
  auth: Pick<AuthService, 'login' | 'logout'>;
  rateLimits: Pick<RateLimits, 'hit'>;
}

export function authRoutes(deps: AuthRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/auth/login',
      {
        config: {
          public: true,
          rateLimit: {
            max: LOGIN_LIMIT,
            timeWindow: 60_000,
            hook: 'preHandler',
            keyGenerator: (request: FastifyRequest) =>
              `login:${request.ip}:${String((request.body as { email?: unknown } | undefined)?.email ?? '')
                .trim()
                .toLowerCase()}`,
          },
        },
        schema: {
          tags,
          summary: 'Sign in',
          description:
            'Sets the HttpOnly `otpilot_session` cookie and returns the same token for `Authorization: Bearer`. Sessions end 7 days after sign-in or after 24 h idle.',
          body: Type.Object(
            {
              email: Type.String({ minLength: 3, maxLength: 320 }),
              password: Type.String({ minLength: 1, maxLength: 1024 }),
              totp: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 32,
                  description: 'The authenticator code (or a backup code) when the user enabled 2FA',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ token: Type.String(), user: UserSchema, expires_at: Timestamp }),
            ...errorResponses(400, 401, 429),
          },
        },
      },
      async (request, reply) => {
        // Trying many emails from one address is guessing too.
        const address = await deps.rateLimits.hit(`login-address:${request.ip}`, LOGIN_ADDRESS_LIMIT, 60_000);
        if (!address.allowed) {
          const retryAfter = Math.ceil(address.retryAfterMs / 1000);
          throw new ApiError('RATE_LIMITED', `too many sign-in attempts from this address; retry in ${retryAfter} s`, {
            retryAfter,
          });
        }
        const session = unwrap(
          await deps.auth.login(request.body.email, request.body.password, {
            userAgent: request.headers['user-agent'] ?? null,
            totp: request.body.totp,
          }),
        );
        reply.setCookie(SESSION_COOKIE, session.token, {
          httpOnly: true,
          sameSite: 'lax',
          secure: request.protocol === 'https',
          path: '/',
          maxAge: SESSION_ABSOLUTE_MS / 1000,
        });
        return session;
      },
    );

    app.post(
      '/auth/logout',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'Sign out (ends the session everywhere it is used)',
          response: { 204: Type.Null(), ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => {
        if (!request.sessionToken) throw new ApiError('UNAUTHORIZED', 'not signed in');
        await deps.auth.logout(request.sessionToken);
        reply.clearCookie(SESSION_COOKIE, { path: '/' });
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/me',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'The signed-in user',
          response: { 200: Type.Object({ user: UserSchema }), ...errorResponses(401) },
        },
      },
      async (request) => ({ user: request.user! }),
    );
  };
}
